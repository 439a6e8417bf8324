"""Knowledge distillation for RNN-T: a KL term between a teacher's and a student's output
distributions over the alignment lattice.

An RNN-T emits, at every lattice node (encoder frame t, labels emitted u), a distribution over
the vocabulary plus blank. The distillation term sums KL(teacher || student) over an utterance's
valid nodes (t < T, u <= U) and divides by its encoder frames T, so it scales like the RNN-T loss
per frame whatever the transcript length; the batch term is the mean over utterances.

Two forms:
- `full`: the whole (V + 1)-way distribution per node; exact, memory B x T x U x V, fine for
  characters.
- `collapsed` (Panchapagesan et al., "Efficient knowledge distillation for RNN-transducer
  models", ICASSP 2021): per node only three outcomes, blank / the correct next label / the
  rest, so a teacher's lattice fits in B x T x U x 3 and large vocabularies stay cheap. At u = U
  there is no next label: its probability is zero and the node is blank / rest.

The teacher's logits are detached here, whatever the caller passes: gradients reach the student
only.
"""

from __future__ import annotations

import torch

FORMS = ("full", "collapsed")
# Floor for a probability that must be positive in a logarithm (the collapsed "rest" outcome).
_TINY = 1e-30


def lattice_mask(logit_lengths: torch.Tensor, target_lengths: torch.Tensor, frames: int, labels: int) -> torch.Tensor:
    """(B, T, U + 1) booleans: node (t, u) lies on utterance b's lattice."""
    t = torch.arange(frames, device=logit_lengths.device)
    u = torch.arange(labels, device=logit_lengths.device)
    return (t[None, :, None] < logit_lengths[:, None, None]) & (u[None, None, :] <= target_lengths[:, None, None])


def collapsed_log_probs(
    logits: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor, blank: int
) -> torch.Tensor:
    """(B, T, U + 1, 3) log-probabilities of blank, the correct next label, and every other symbol.

    `targets` are (B, U) label ids; at u >= U_b the next-label outcome has probability zero."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    batch, frames, labels, _ = log_probs.shape
    next_label = torch.nn.functional.pad(targets, (0, labels - targets.shape[1]), value=blank).long()
    label_log_prob = torch.gather(log_probs, 3, next_label[:, None, :, None].expand(batch, frames, labels, 1))[..., 0]
    has_label = torch.arange(labels, device=logits.device)[None, :] < target_lengths[:, None]
    label_log_prob = label_log_prob.masked_fill(~has_label[:, None, :], float("-inf"))
    blank_log_prob = log_probs[..., blank]
    rest = (1.0 - blank_log_prob.exp() - label_log_prob.exp()).clamp_min(_TINY)
    return torch.stack([blank_log_prob, label_log_prob, rest.log()], dim=-1)


def _node_kl(teacher_log_probs: torch.Tensor, student_log_probs: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) over the last axis; outcomes the teacher gives zero contribute zero."""
    teacher_probs = teacher_log_probs.exp()
    terms = teacher_probs * (teacher_log_probs - student_log_probs)
    return torch.where(teacher_probs > 0, terms, torch.zeros_like(terms)).sum(dim=-1)


def lattice_kl(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    logit_lengths: torch.Tensor,
    targets: torch.Tensor,
    target_lengths: torch.Tensor,
    blank: int,
    form: str,
) -> torch.Tensor:
    """Mean over utterances of sum over lattice nodes of KL(teacher || student), per encoder frame.

    Logits are (B, T, U + 1, V + 1) as torchaudio's RNN-T joiner returns them."""
    if form not in FORMS:
        raise ValueError(f"distillation form {form!r}: expected one of {FORMS}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"teacher logits {tuple(teacher_logits.shape)} and student logits "
            f"{tuple(student_logits.shape)} differ: they must score the same batch"
        )
    teacher_logits = teacher_logits.detach()
    if form == "full":
        node_kl = _node_kl(
            torch.log_softmax(teacher_logits.float(), dim=-1), torch.log_softmax(student_logits.float(), dim=-1)
        )
    else:
        node_kl = _node_kl(
            collapsed_log_probs(teacher_logits, targets, target_lengths, blank),
            collapsed_log_probs(student_logits, targets, target_lengths, blank),
        )
    _, frames, labels = node_kl.shape
    on_lattice = lattice_mask(logit_lengths, target_lengths, frames, labels)
    per_utterance = torch.where(on_lattice, node_kl, torch.zeros_like(node_kl)).sum(dim=(1, 2))
    return (per_utterance / logit_lengths.clamp_min(1).to(per_utterance.dtype)).mean()
