"""The plots saved beside a model: confusion matrix and training curves (PNG, no display)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlcore.artefact import CONFUSION_PLOT_FILE, CURVES_PLOT_FILE


def save_plots(*, out_dir: Path, metrics: dict, history: dict) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # worker processes have no display
    return [
        plot_confusion_matrix(out_dir / CONFUSION_PLOT_FILE, confusion=np.array(metrics["confusion_matrix"]),
                              classes=metrics["classes"], title=f"{metrics.get('split', 'test')} split"),
        plot_training_curves(out_dir / CURVES_PLOT_FILE, history=history),
    ]


def plot_confusion_matrix(path: Path, *, confusion: np.ndarray, classes: list[str], title: str) -> Path:
    import matplotlib.pyplot as plt

    size = max(4.0, 0.8 * len(classes) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(confusion, cmap="Blues")
    axes.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"Confusion matrix ({title})")
    high = confusion.max() if confusion.size else 0
    for (row, column), count in np.ndenumerate(confusion):
        axes.text(column, row, str(count), ha="center", va="center",
                  color="white" if count > high / 2 else "black")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_training_curves(path: Path, *, history: dict) -> Path:
    import matplotlib.pyplot as plt

    head = history.get("head", {})
    finetune = history.get("finetune", [])
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = np.arange(1, len(head.get("loss", [])) + 1)
    for key, style in (("loss", "-"), ("val_loss", "--")):
        if key in head:
            loss_axes.plot(epochs, head[key], style, label=f"head {key}")
    for key, style in (("accuracy", "-"), ("val_accuracy", "--")):
        if key in head:
            accuracy_axes.plot(epochs, head[key], style, label=f"head {key}")
    if finetune:
        # Fine-tuning epochs continue the x axis after the head's last epoch.
        later = len(epochs) + np.array([record["epoch"] for record in finetune])
        loss_axes.plot(later, [r["loss"] for r in finetune], "-o", label="fine-tune loss")
        loss_axes.plot(later, [r["val_loss"] for r in finetune], "--o", label="fine-tune val_loss")
        accuracy_axes.plot(later, [r["val_accuracy"] for r in finetune], "--o", label="fine-tune val_accuracy")
    for axes, name in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
        axes.set_xlabel("epoch")
        axes.set_ylabel(name)
        axes.legend(loc="best", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
