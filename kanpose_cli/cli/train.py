"""``kanpose train``: train a pose model on COCO keypoint (any K) / YOLO-pose / LSP training sets (single process,
or DDP under torchrun)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from kanpose_cli.cli.console import console
from kanpose_cli.cli.errors import fail, handle_errors
from kanpose_cli.core.text import plural

EPILOG = (
    "Examples:  kanpose train --model amfacpose-r18-256x192 --train-ann train.json --train-images train2017/ "
    "--val-ann val.json --val-images val2017/ --epochs 20  ·  kanpose train --resume auto  ·  "
    "kanpose train --model kanfpn-s4 --init hub ... (ViT blocks + head from ViTPose+-S)  ·  "
    "--train-ann coco.json --train-images coco/ --train-ann lspet/joints.mat --train-images lspet/images "
    "--train-ratio 1 --train-ratio 0.5 (half of LSP-Extended per epoch)  ·  "
    "kanpose train --data hands/data.yaml --init amfacpose-r18-128x96-coco-lsp (an ultralytics YOLO-pose dataset, any "
    "keypoints)  ·  --train-ann hands.json --train-images imgs/ --keypoint-set hand.yaml  ·  "
    "torchrun --nproc-per-node 4 -m kanpose_cli train ... --device cuda --amp bf16 --sync-bn  ·  "
    "--set optim.lr=5e-4 --set sched.type=cosine --set aug=null"
)

PANEL_DATA, PANEL_OPT, PANEL_RUN = "Data", "Optimisation", "Run"


class _RichProgress:
    """Callback: outer epoch task + inner batch task (loss, lr, img/s, ETA); one summary line per epoch."""

    def __init__(self, quiet: bool = False):
        from kanpose_cli.cli.console import make_progress

        self.quiet = quiet
        self.progress = make_progress()
        self.epoch_task = self.batch_task = None

    def on_train_start(self, t):
        if not self.quiet:
            self.progress.start()
        self.epoch_task = self.progress.add_task("epochs", total=t.epochs, completed=t.epoch, info="")

    def on_epoch_start(self, t, epoch, n):
        if self.batch_task is not None:
            self.progress.remove_task(self.batch_task)
        self.batch_task = self.progress.add_task(f"epoch {epoch + 1}/{t.epochs}", total=t.iters_per_epoch,
                                                 completed=t.iter_in_epoch, info="")

    def on_step_end(self, t, info):
        self.progress.update(self.batch_task, completed=info["iter"],
                             info=f"loss {info['mean_loss']:.4g} · lr {info['lr']:.2e} · {info['img_per_s']:.1f} img/s")

    def on_validation_start(self, t):
        self.progress.update(self.batch_task, info="validating…")

    def on_epoch_end(self, t, row):
        self.progress.update(self.epoch_task, completed=t.epoch,
                             info=f"best AP {t.best_ap:.3f}" if t.best_ap >= 0 else "")
        ap = " · ".join(f"{k} {row[k]:.3f}" for k in ("AP", "AP50", "AP75", "AR") if k in row)
        self.progress.console.print(f"epoch {row['epoch']}/{t.epochs} · step {row['step']} · loss "
                                    f"{row['train_loss']:.4g} · lr {row['lr']:.2e} · {row['img_per_s']:.1f} img/s · "
                                    f"{row['time_s']:.0f} s" + (f" · {ap}" if ap else ""))

    def on_train_end(self, t, summary):
        self.progress.stop()

    def on_validation_end(self, t):  # pragma: no cover - not a Trainer hook; kept for symmetry
        pass


def print_init_report(report) -> None:
    """The table of ``--init``: per part of the network, what was loaded, skipped (with the reason) or left new."""
    from rich.table import Table

    from kanpose_cli.cli.console import print_table

    colour = {"loaded": "green", "skipped": "yellow", "new": "cyan"}
    table = Table(title=report.summary() + (f" · {report.merged}" if report.merged else ""))
    for col, just in [("part", "left"), ("module", "left"), ("status", "left"), ("tensors", "right"),
                      ("params", "right"), ("reason", "left")]:
        table.add_column(col, justify=just, no_wrap=col != "reason")
    for r in report.rows:
        table.add_row(r.part, r.kind, f"[{colour[r.status]}]{r.status}[/]", str(r.tensors), f"{r.params:,}",
                      r.reason)
    print_table(table, console)  # with the other training logs on stderr


@handle_errors
def train(
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Model to train (see `kanpose models`).",
                                                 rich_help_panel="Model")] = None,
    init: Annotated[Optional[str], typer.Option(
        "--init", help="Initialise the parts of the model that these weights have: shipped (the model's shipped "
        "weights; or a shipped file's name, e.g. amfacpose-r18-128x96-coco-lsp), a kanpose .safetensors "
        "checkpoint, an official/Hugging Face checkpoint, hub (the model's published weights; KAN-FPN: "
        "vitpose-s's) or hf://OWNER/REPO. Prints what was loaded, skipped and left new.",
        rich_help_panel="Model")] = None,
    weights: Annotated[Optional[str], typer.Option(
        "--weights", "-w", help="Same as --init (older name).", rich_help_panel="Model", hidden=True)] = None,
    data: Annotated[Optional[Path], typer.Option(
        "--data", help="An ultralytics YOLO-pose dataset: its data.yaml (path, train, val, kpt_shape, flip_idx, names; "
        "labels/*.txt beside images/). Gives the training set, the validation set and the keypoint set.",
        rich_help_panel=PANEL_DATA)] = None,
    keypoint_set: Annotated[Optional[str], typer.Option(
        "--keypoint-set", help="The model's keypoints: a built-in set's name (coco17, lsp14, ...) or a .json / .yaml "
        "file: a keypoint-set file (name, names, flip_index, skeleton, sigmas), a COCO annotation file (its "
        "categories[0]) or an ultralytics data.yaml. Default: the first training set's own (a COCO file's "
        "categories[0], the data.yaml's, mpii16 for an MPII JSON). COCO / YOLO sets with as many keypoints are "
        "read as this set.",
        rich_help_panel=PANEL_DATA)] = None,
    train_ann: Annotated[Optional[List[Path]], typer.Option(
        "--train-ann", help="Training set: a COCO keypoint .json, an mmpose MPII .json (a list of people) or a LSP / "
        "LSP-Extended joints.mat (repeat for several sets; other skeletons are mapped onto the model's keypoints).",
        rich_help_panel=PANEL_DATA)] = None,
    train_images: Annotated[Optional[List[Path]], typer.Option(
        "--train-images", help="Image folder of each --train-ann (one for all, or one per file).",
        rich_help_panel=PANEL_DATA)] = None,
    train_ratio: Annotated[Optional[List[float]], typer.Option(
        "--train-ratio", min=0.0, help="Persons drawn per epoch from each --train-ann, as a multiple of its size "
        "(1 = each once, 0.5 = a random half, 2 = each twice); one per file or one for all. Default 1.",
        rich_help_panel=PANEL_DATA)] = None,
    val_ann: Annotated[Optional[Path], typer.Option("--val-ann", help="COCO keypoint JSON for validation AP.",
                                                    rich_help_panel=PANEL_DATA)] = None,
    val_images: Annotated[Optional[Path], typer.Option("--val-images", help="Image folder of --val-ann.",
                                                       rich_help_panel=PANEL_DATA)] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, help="Epochs (default: the recipe's).",
                                                  rich_help_panel=PANEL_OPT)] = None,
    batch: Annotated[Optional[int], typer.Option("--batch", min=1, help="Batch size per process.",
                                                 rich_help_panel=PANEL_OPT)] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", min=0.0, help="Base learning rate.",
                                                rich_help_panel=PANEL_OPT)] = None,
    amp: Annotated[Optional[str], typer.Option("--amp", help="Mixed precision: none, bf16 or fp16 (CUDA).",
                                               rich_help_panel=PANEL_OPT)] = None,
    no_aug: Annotated[bool, typer.Option("--no-aug", help="Disable augmentation (plain box crops).",
                                         rich_help_panel=PANEL_OPT)] = False,
    sync_bn: Annotated[bool, typer.Option("--sync-bn", help="SyncBatchNorm across DDP processes.",
                                          rich_help_panel=PANEL_OPT)] = False,
    sets: Annotated[Optional[List[str]], typer.Option(
        "--set", help="Override any recipe key: --set optim.weight_decay=0.05 (repeatable; JSON values).",
        rich_help_panel=PANEL_OPT)] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", min=0, help="DataLoader worker processes.",
                                                   rich_help_panel=PANEL_RUN)] = None,
    device: Annotated[Optional[str], typer.Option(
        "--device", "-d", help="auto (default: CUDA when available, else CPU), cpu, cuda or cuda:N (DDP: cuda = one "
        "GPU per local rank).", rich_help_panel=PANEL_RUN)] = None,
    seed: Annotated[Optional[int], typer.Option(
        "--seed", help="Seed of the sample order and augmentation (default 0; with --init from weights kanpose train "
        "made: the highest seed of their lineage + 1).", rich_help_panel=PANEL_RUN)] = None,
    val_every: Annotated[Optional[int], typer.Option("--val-every", min=1, help="Validate every N epochs.",
                                                     rich_help_panel=PANEL_RUN)] = None,
    resume: Annotated[Optional[str], typer.Option(
        "--resume", help="Continue a run: auto (newest under --project), a run folder, or a state/last.pt file.",
        rich_help_panel=PANEL_RUN)] = None,
    project: Annotated[Path, typer.Option("--project", help="Parent of the auto-numbered run folders.",
                                          rich_help_panel=PANEL_RUN)] = Path("runs/train"),
    show_config: Annotated[bool, typer.Option("--show-config", help="Print the effective config and exit.",
                                              rich_help_panel=PANEL_RUN)] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live progress (one line per epoch).",
                                        rich_help_panel=PANEL_RUN)] = False,
):
    """Train a pose model (recipe per family and variant, CLI overrides, resumable checkpoints, DDP via torchrun)."""
    import json

    import torch.distributed as dist

    from kanpose_cli.core import training as T
    from kanpose_cli.core.io import check_writable, next_run_dir
    from kanpose_cli.core.parallel import dist_info, finish_distributed, init_distributed
    from kanpose_cli.core.weights import DEFAULT_MODEL, resolve_init

    if init is not None and weights is not None and init != weights:
        raise fail("give --init or its older name --weights, not both", 2)
    init = init if init is not None else weights

    rank, world, _ = dist_info()
    state, finetune_note = None, None
    if resume is not None:
        path = T.find_resume_state(resume, project)
        state = T.load_state(path)
        run_dir = path.parent.parent
        if rank == 0:
            check_writable(run_dir, "the run folder")  # before any training (exit 3)
        if epochs is not None:
            state["config"]["epochs"] = int(epochs)
        console.print(f"resuming {run_dir} from epoch {state['epoch']} step {state['step']}"
                      + (f" (iteration {state['iter_in_epoch']} of the epoch)" if state.get("iter_in_epoch") else ""))
        cfg = T.TrainConfig.from_dict(state["config"])
    else:
        if train_ratio and not train_ann:
            raise fail("--train-ratio needs --train-ann", 2)
        values: dict = {}
        sources, yaml_val = T.yolo_data(data) if data is not None else ([], None)
        if train_ann:
            sources = sources + T.train_sources(train_ann, train_images, train_ratio)
        if sources:
            values["data.train"] = sources
        if val_ann is not None:
            values["data.val"] = T.val_set(val_ann, val_images)
        elif yaml_val is not None:
            values["data.val"] = yaml_val
        if keypoint_set is not None:
            values.update(T.keypoint_set_values(keypoint_set))
        for key, value in (("epochs", epochs), ("batch", batch), ("workers", workers), ("seed", seed),
                           ("device", device), ("amp", amp), ("optim.lr", lr), ("val.every", val_every)):
            if value is not None:
                values[key] = value
        if no_aug:
            values["aug"] = None
        if sync_bn:
            values["sync_bn"] = True
        if init is not None:
            values["init"] = resolve_init(init, model or DEFAULT_MODEL)  # shipped / a shipped name -> its path
        cfg = T.apply_overrides(T.apply_values(T.TrainConfig.from_recipe(model or DEFAULT_MODEL), values), sets)
        explicit = set(values) | {s.split("=", 1)[0].strip() for s in sets or []}
        cfg, finetune_note = T.finetune_defaults(cfg, explicit)
        if show_config:
            typer.echo(json.dumps(cfg.to_dict(), indent=1))
            raise typer.Exit(0)
        if not cfg.data.train:
            raise fail("no training data: give --data data.yaml or --train-ann FILE --train-images DIR "
                       "(or --resume)", 2)
        run_dir = None
        if rank == 0:
            check_writable(project, "--project")  # before the data is loaded and the model trained (exit 3)
            run_dir = next_run_dir(project)  # created when training starts (Trainer.fit)
    if state is None and world > 1:
        init_distributed(cfg.device)
        holder = [str(run_dir.create()) if run_dir is not None else None]  # every rank needs the real name
        dist.broadcast_object_list(holder, src=0)
        run_dir = Path(holder[0])
    callbacks = [_RichProgress(quiet)] if rank == 0 else []
    trainer = T.Trainer(cfg, run_dir, callbacks=callbacks, state=state)
    if rank == 0:
        drawn = f" ({trainer.epoch_size} drawn per epoch)" if trainer.epoch_size != trainer.num_persons else ""
        kset = trainer.model.keypoints
        console.print(f"[bold]kanpose train[/] · {trainer.model.name} · keypoints {kset.name} "
                      f"({kset.num_keypoints}) · {plural(trainer.num_persons, 'person')}"
                      f"{drawn} · {plural(trainer.epochs, 'epoch')} × {plural(trainer.iters_per_epoch, 'iter')} · "
                      f"batch {trainer.batch_size}×"
                      f"{trainer.world} · device {trainer.device} · amp {trainer.amp} · seed {trainer.cfg.seed} · "
                      f"run {run_dir}")
        if trainer.cfg.init and state is None:
            console.print(f"init {trainer.cfg.init}", soft_wrap=True)
        if state is None and finetune_note:
            console.print(f"[dim]note:[/] {finetune_note}", soft_wrap=True)
        if trainer.init_report is not None:
            print_init_report(trainer.init_report)
        if not T.tensorboard_available():
            from rich.markup import escape

            console.print(f"[dim]note:[/] tensorboard is not installed: logs are results.csv and results.png only "
                          f"({escape(T.TENSORBOARD_HINT)} for TensorBoard scalars)", soft_wrap=True)
        if cfg.data.val is None:
            console.print("[yellow]warning:[/] no --val-ann (nor a val split in --data): no validation AP; "
                          "best.safetensors will not be written")
    summary = trainer.fit()
    if rank == 0:
        best = (f"best AP {summary['best_ap']:.3f} (epoch {summary['best_epoch']})" if summary["best"]
                else "no validation")
        console.print(f"done: {plural(summary['epochs'], 'epoch')}, {plural(summary['step'], 'step')}, "
                      f"{summary['wall_s'] / 60:.1f} min · "
                      f"{best} · weights in {run_dir / 'weights'}")
    if world > 1:
        finish_distributed()
