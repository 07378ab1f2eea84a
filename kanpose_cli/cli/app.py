"""Root Typer app: registers one module per subcommand."""

from __future__ import annotations

import typer

from kanpose_cli import __version__
from kanpose_cli.core.logs import silence_third_party_logs

app = typer.Typer(
    name="kanpose",
    help="Top-down human pose estimation: YOLO person boxes -> ViTPose/KAN-FPN-Stem, AMFACPose or FlatPose.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    add_completion=True,
)


def _version(value: bool):
    if value:
        typer.echo(f"kanpose {__version__}")
        raise typer.Exit()


@app.callback()
def root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print the version and exit.")):
    """kanpose command line."""
    silence_third_party_logs()  # before any command imports OpenCV or ultralytics: kanpose's errors stand alone
    from kanpose_cli.cli.notes import show_notes

    show_notes()  # one-time work (an ONNX export) is announced as "note: …"


def _register() -> None:
    from kanpose_cli.cli import bench as bench_cmd
    from kanpose_cli.cli import eval as eval_cmd
    from kanpose_cli.cli import export as export_cmd
    from kanpose_cli.cli import label as label_cmd
    from kanpose_cli.cli import models as models_cmd
    from kanpose_cli.cli import predict as predict_cmd
    from kanpose_cli.cli import train as train_cmd

    app.command("predict", epilog=predict_cmd.EPILOG)(predict_cmd.predict)
    app.add_typer(eval_cmd.eval_app, name="eval")
    app.command("train", epilog=train_cmd.EPILOG)(train_cmd.train)
    app.command("label", epilog=label_cmd.EPILOG)(label_cmd.label)
    app.command("bench", epilog=bench_cmd.EPILOG)(bench_cmd.bench)
    app.command("export", epilog=export_cmd.EPILOG)(export_cmd.export)
    app.command("models", epilog=models_cmd.EPILOG)(models_cmd.models)


_register()


def main() -> None:
    """Console-script entry point."""
    app()
