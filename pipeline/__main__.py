"""`python -m pipeline` runs the command-line interface (and exits without tearing the
interpreter down: see pipeline.cli.run)."""

from pipeline.cli import run

if __name__ == "__main__":
    run()
