"""Entry point of the desktop bundle (PyInstaller runs this file as __main__)."""

import multiprocessing
import sys

from gui.app import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # torch data loaders and DDP spawn workers from the frozen exe
    sys.exit(main())
