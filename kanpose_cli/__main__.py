"""``python -m kanpose_cli`` runs the CLI (also what ``torchrun ... -m kanpose_cli`` uses)."""

from kanpose_cli.cli.app import main

if __name__ == "__main__":
    main()
