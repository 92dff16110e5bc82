"""Action heads: losses and held-out metrics for the GUI head (categorical segments) and the
robot head (a K-step chunk: continuous (dx, dy) by MSE, grip as a binary logit by BCE).
Logits are [N, A] rows taken at each frame's last prefix position; targets as train/gen.ts writes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from model import GUI_SEGMENTS, robot_segments, segment_table

GUI_TABLE = segment_table(GUI_SEGMENTS)
GUI_SLICES = {s['name']: slice(s['offset'], s['offset'] + s['size']) for s in GUI_TABLE}
# target columns of train/gen/gui.ts: type, click_x, click_y, digit0..3, scroll
GUI_COLUMN = {'type': 0, 'click_x': 1, 'click_y': 2, 'digit0': 3, 'digit1': 4, 'digit2': 5,
              'digit3': 6, 'scroll': 7}
CLICK, TYPE, SCROLL, DONE = range(4)


def gui_loss(logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor,
             digit_weight: float = 1.0) -> torch.Tensor:
    """Sum over segments of weighted CE; a segment counts only where its target is >= 0.
    digit_weight scales the four digit segments: they apply on one row in ~12 (the `type` steps
    of code-copy/code-entry), so without it their share of the gradient is small and reading
    the code is learnt last (train/runs/2026-11-29-h200-gui-stem-run.txt)."""
    total = logits.new_zeros(())
    norm = weight.sum().clamp(min=1.0)
    for name, sl in GUI_SLICES.items():
        t = targets[:, GUI_COLUMN[name]]
        on = t >= 0
        ce = F.cross_entropy(logits[:, sl].float(), t.clamp(min=0), reduction='none')
        if name.startswith('digit'):
            ce = ce * digit_weight
        total = total + (ce * on * weight).sum() / norm
    return total


def gui_decode(logits: torch.Tensor) -> torch.Tensor:
    """Argmax per segment -> [N, 8] in the target columns' order (unused columns -1)."""
    out = torch.full((logits.shape[0], 8), -1, dtype=torch.long, device=logits.device)
    for name, sl in GUI_SLICES.items():
        out[:, GUI_COLUMN[name]] = logits[:, sl].argmax(-1)
    kind = out[:, 0]
    out[:, 1:3][kind != CLICK] = -1
    out[:, 3:7][kind != TYPE] = -1
    out[:, 7][kind != SCROLL] = -1
    return out


def gui_correct(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per row booleans (NaN-free): whole action right, and per segment (only where it applies)."""
    pred = gui_decode(logits)
    exact = (pred == targets).all(-1)
    kind = targets[:, 0]
    res = {'action': exact, 'type': pred[:, 0] == kind}
    res['click'] = torch.where(kind == CLICK, (pred[:, 1:3] == targets[:, 1:3]).all(-1), torch.ones_like(exact))
    res['digits'] = torch.where(kind == TYPE, (logits[:, GUI_SLICES['digit0'].start:GUI_SLICES['digit3'].stop]
                                               .view(-1, 4, 10).argmax(-1) == targets[:, 3:7]).all(-1),
                                torch.ones_like(exact))
    for i in range(4):  # per digit: chance is 0.1 (all four right: 1e-4), so progress shows here first
        sl = GUI_SLICES[f'digit{i}']
        res[f'digit{i}'] = torch.where(kind == TYPE, logits[:, sl].argmax(-1) == targets[:, 3 + i], torch.ones_like(exact))
    res['scroll'] = torch.where(kind == SCROLL, logits[:, GUI_SLICES['scroll']].argmax(-1) == targets[:, 7],
                                torch.ones_like(exact))
    res['_applies'] = torch.stack([torch.ones_like(exact), torch.ones_like(exact), kind == CLICK, kind == TYPE,
                                   kind == SCROLL] + [kind == TYPE] * 4)
    return res


def robot_loss(logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor, chunk: int,
               grip_weight: float = 0.5) -> torch.Tensor:
    move = logits[:, :2 * chunk].float().view(-1, chunk, 2)
    grip = logits[:, 2 * chunk:3 * chunk].float()
    mse = ((move - targets[:, :, :2]) ** 2).sum(-1).mean(-1)
    bce = F.binary_cross_entropy_with_logits(grip, targets[:, :, 2], reduction='none').mean(-1)
    norm = weight.sum().clamp(min=1.0)
    return ((mse + grip_weight * bce) * weight).sum() / norm


def robot_correct(logits: torch.Tensor, targets: torch.Tensor, chunk: int) -> dict[str, torch.Tensor]:
    """Per row: first-tick move within 0.2 (L2, speed units) of the expert's, grip bits all right,
    the whole action right (both); plus the move's squared error."""
    move = logits[:, :2 * chunk].float().view(-1, chunk, 2)
    grip = logits[:, 2 * chunk:3 * chunk].float() >= 0
    err = (move[:, 0] - targets[:, 0, :2]).norm(dim=-1)
    move_ok = err <= 0.2
    grip_ok = (grip == (targets[:, :, 2] >= 0.5)).all(-1)
    return {'action': move_ok & grip_ok, 'move': move_ok, 'grip': grip_ok,
            '_mse': ((move - targets[:, :, :2]) ** 2).sum(-1).mean(-1)}


def robot_table(chunk: int) -> list[dict]:
    return segment_table(robot_segments(chunk, True))
