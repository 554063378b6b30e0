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


def plot_detection_examples(path: Path, *, examples: list) -> Path:
    """Test images with their true boxes (solid) and the model's (dashed, with scores >= 0.3)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from mlcore.detection import KEPT_SCORE

    count = max(len(examples), 1)
    columns = min(count, 3)
    rows = (count + columns - 1) // columns
    figure, grid = plt.subplots(rows, columns, figsize=(3.4 * columns, 3.6 * rows), squeeze=False)
    for axes in grid.flat:
        axes.axis("off")
    for axes, (image, truth, predicted) in zip(grid.flat, examples):
        height, width = image.shape[:2]
        axes.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
        for label, x0, y0, x1, y1 in truth:
            axes.add_patch(Rectangle((x0 * width, y0 * height), (x1 - x0) * width, (y1 - y0) * height,
                                     fill=False, edgecolor="lime", linewidth=1.5))
        for found in predicted:
            if found.score < KEPT_SCORE:
                continue
            x0, y0, x1, y1 = found.box
            axes.add_patch(Rectangle((x0 * width, y0 * height), (x1 - x0) * width, (y1 - y0) * height,
                                     fill=False, edgecolor="red", linestyle="--", linewidth=1.5))
            axes.text(x0 * width, y0 * height, f"{found.label} {found.score:.2f}", color="red", fontsize=7,
                      va="bottom", backgroundcolor=(1, 1, 1, 0.6))
        axes.set_title(", ".join(sorted({box[0] for box in truth})) or "no defect", fontsize=9)
    figure.suptitle("Test images: true boxes solid green, model's dashed red")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
