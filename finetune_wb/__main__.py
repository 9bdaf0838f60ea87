import sys

from finetune_wb.cli import main

sys.exit(main())
