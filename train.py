#!/usr/bin/env python
"""Train JOYFUL: `python train.py --dataset iemocap_4 --modalities atv --data PATH --epochs 50`."""

import sys

from joyful.cli import main

if __name__ == "__main__":
    sys.exit(main())
