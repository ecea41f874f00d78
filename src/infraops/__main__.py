"""`python -m infraops`."""

from infraops.cli import main

if __name__ == "__main__":
    main()
