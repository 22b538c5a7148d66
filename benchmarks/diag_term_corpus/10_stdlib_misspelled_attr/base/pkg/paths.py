import os

ROOT = os.getcwd()
