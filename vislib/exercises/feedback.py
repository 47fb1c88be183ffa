"""Feedback for the course's exercises: compare a student's answer with an independent one and
say in words what is wrong.

A check runs the student's function on inputs of its own (:func:`attempt`), compares the result
with an answer computed independently (:func:`expect_close`, :func:`expect_equal`) and either
prints that the answer is correct (:func:`passed`) or raises :class:`ExerciseError` with a
message a student can act on: the shape that was expected, a flipped sign, a transposed axis, a
constant factor, or the largest deviation with its position and both values, plus a hint.

:class:`ExerciseError` is an ``AssertionError``, so nbgrader's autograder counts a failing check
cell as a failed test, exactly like a bare ``assert``.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["ExerciseError", "attempt", "expect_close", "expect_equal", "expect_shape", "expect_tensor",
           "fail", "passed", "recognise", "same"]

#: Hints for errors torch raises on common slips (words of the error message -> hint).
TORCH_HINTS = {
    "needs 4D input": "F.interpolate(..., mode='bilinear') needs a 4-D tensor [B, C, h, w]: add a channel axis "
                      "(m[:, None] or m.unsqueeze(1)), interpolate, then remove it again ([:, 0])",
}


class ExerciseError(AssertionError):
    """An exercise's answer is wrong (or missing); the message says what and how to fix it."""


def fail(what: str, problem: str, hint: str | None = None) -> None:
    """Raise :class:`ExerciseError` as ``"<what>: <problem>\\nHint: <hint>"``."""
    text = f"{what}: {problem}"
    if hint:
        text += f"\nHint: {hint}"
    raise ExerciseError(text)


def passed(what: str, detail: str | None = None) -> None:
    """Print the one line a student sees when a check passes."""
    print(f"✔ Correct: {what}" + (f" ({detail})" if detail else "") + ".")


def attempt(fn: Callable[..., Any], *args: Any, name: str | None = None,
            hints: Mapping[str, str] | None = None, **kwargs: Any) -> Any:
    """Call the student's ``fn(*args, **kwargs)`` and turn the ways it can break into feedback.

    * the exercise's stub (``raise NotImplementedError()``, no message) → "not solved yet"; a
      NotImplementedError *with* a message comes from torch (e.g. a 3-D tensor given to a 2-D
      interpolation) and is reported like any other error;
    * any other exception → which exception, raised by which function, with the student's own
      traceback chained above the message, and the hint of ``hints`` (words of an error message →
      hint) whose words the message contains;
    * a function that changes a tensor it was given (``x.relu_()``, ``+=``) → an error, since
      every later cell would see the changed input.
    """
    label = name or getattr(fn, "__name__", "your function")
    if not callable(fn):
        fail(f"`{label}`", f"expected a function, got {type(fn).__name__}",
             "pass the function itself, without calling it: check(my_function), not check(my_function())")
    before = [(a, a.detach().clone()) for a in itertools.chain(args, kwargs.values()) if isinstance(a, Tensor)]
    try:
        result = fn(*args, **kwargs)
    except NotImplementedError as error:
        if str(error):        # raised by torch or a library with a message, not by the exercise's stub
            raise _raised(label, error, hints) from error
        raise ExerciseError(
            f"`{label}` is not solved yet: replace `raise NotImplementedError()` in the exercise cell above "
            "with your code, run that cell, then run this check again.") from None
    except ExerciseError:
        raise
    except Exception as error:  # noqa: BLE001 - every error of the student's code becomes feedback
        raise _raised(label, error, hints) from error
    for original, copy in before:
        if original.shape != copy.shape or not torch.equal(original.detach(), copy):
            fail(f"`{label}`", "changed one of the tensors it was given (an in-place operation such as "
                 "`x.relu_()`, `x += ...` or `x[...] = ...` on an argument)",
                 "work on a copy (`x = x.clone()`) or use the out-of-place version (`x.relu()`, `x = x + ...`)")
    return result


def _raised(label: str, error: Exception, hints: Mapping[str, str] | None) -> ExerciseError:
    hint = next((h for words, h in {**TORCH_HINTS, **(hints or {})}.items() if words in str(error)),
                "the traceback above shows the line of your function that failed.")
    return ExerciseError(f"`{label}` raised {type(error).__name__}: {error}\nHint: {hint}")


def _shape(t: Any) -> tuple[int, ...]:
    return tuple(t.shape)


def expect_tensor(actual: Any, what: str) -> Tensor:
    """``actual`` as a tensor; NumPy arrays are accepted, anything else is an error."""
    if isinstance(actual, np.ndarray):
        return torch.from_numpy(actual)
    if not isinstance(actual, Tensor):
        fail(what, f"expected a torch.Tensor, got {type(actual).__name__}",
             "return the tensor itself (not a Python number, list or tuple)")
    return actual


def expect_shape(actual: Tensor, expected: Sequence[int], what: str, hint: str | None = None) -> None:
    """Fail unless ``actual.shape == expected``; recognise permuted and squeezed/unsqueezed axes."""
    got, want = _shape(actual), tuple(expected)
    if got == want:
        return
    problem = f"has shape {got}, expected {want}"
    if sorted(got) == sorted(want) and len(got) == len(want):
        problem += " (the same sizes in another order: are two axes swapped?)"
    elif tuple(d for d in got if d != 1) == tuple(d for d in want if d != 1):
        problem += " (the same sizes apart from axes of size 1: a missing or extra unsqueeze/squeeze or keepdim?)"
    elif math.prod(got) == math.prod(want):
        problem += " (the same number of values: a reshape in the wrong order, or a reduction over the wrong axis?)"
    fail(what, problem, hint)


def _position(index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(index, shape)) if shape else ()


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def expect_close(actual: Any, expected: Tensor, what: str, *, atol: float = 1e-5, rtol: float = 1e-4,
                 hint: str | None = None, axes: Sequence[str] | None = None) -> None:
    """Fail unless ``actual`` equals ``expected`` (same shape, values within ``atol + rtol·|expected|``).

    When it does not, the message names the most likely mistake it can recognise: NaN or inf
    values, a flipped sign, a constant factor, two swapped axes, a missing absolute value, a
    missing ReLU; otherwise the largest deviation with its position (named by ``axes``) and
    both values, and how many entries are off.
    """
    actual = expect_tensor(actual, what)
    expected = expected.detach()
    expect_shape(actual, _shape(expected), what, hint)
    if not (torch.is_floating_point(actual) or actual.dtype == expected.dtype):
        actual = actual.to(expected.dtype)
    a = actual.detach().to(torch.float64).cpu()
    e = expected.to(torch.float64).cpu()
    if not torch.isfinite(a).all():
        bad = (~torch.isfinite(a)).flatten().nonzero()[0].item()
        fail(what, f"contains NaN or inf values, e.g. at {_where(bad, _shape(a), axes)}",
             hint or "look for a division by zero or the log of zero")
    tol = atol + rtol * e.abs()
    close = (a - e).abs() <= tol
    if close.all():
        return
    diagnoses = []
    if ((a + e).abs() <= tol).all():
        diagnoses.append("every value has the wrong sign")
    elif ((a - e.abs()).abs() <= tol).all():
        diagnoses.append("it equals the absolute value of the expected answer: keep the sign")
    elif ((a.abs() - e).abs() <= tol).all():
        diagnoses.append("the magnitudes are right but some signs are wrong (an absolute value or a "
                         "clamp is missing or misplaced?)")
    elif ((a.clamp_min(0) - e).abs() <= tol).all():
        diagnoses.append("the positive values are right, but it keeps negative values the answer "
                         "does not have: a missing ReLU or clamp at 0?")
    else:
        factor = _constant_factor(a, e)
        if factor is not None:
            diagnoses.append(f"it is the expected answer times {factor:.4g} (a missing or extra normalisation "
                             "or a constant factor?)")
        swapped = _swapped_axes(a, e, atol, rtol)
        if swapped is not None:
            names = [axes[i] if axes and i < len(axes) else f"axis {i}" for i in swapped]
            diagnoses.append(f"it matches the answer with {names[0]} and {names[1]} swapped")
    worst = int(((a - e).abs() - tol).flatten().argmax())
    where = _where(worst, _shape(a), axes)
    problem = (f"{int((~close).sum())} of {close.numel()} values are wrong; the largest deviation is at "
               f"{where}: yours {_fmt(a.flatten()[worst].item())}, expected {_fmt(e.flatten()[worst].item())}")
    if diagnoses:
        problem = "; ".join(diagnoses) + ".\n" + problem
    fail(what, problem, hint)


def _where(index: int, shape: tuple[int, ...], axes: Sequence[str] | None) -> str:
    pos = _position(index, shape)
    if axes and len(axes) == len(pos):
        return ", ".join(f"{n}={p}" for n, p in zip(axes, pos))
    return f"index {pos}"


def _constant_factor(a: Tensor, e: Tensor) -> float | None:
    """The c with a = c·e (least squares) when that fits to 1e-4 relative and c is not ±1 or 0."""
    denom = (e * e).sum()
    if denom == 0:
        return None
    c = float((a * e).sum() / denom)
    if abs(c) < 1e-8 or abs(abs(c) - 1) < 1e-6:
        return None
    fit = (a - c * e).norm() <= 1e-4 * (c * e).norm()
    return c if fit else None


def _swapped_axes(a: Tensor, e: Tensor, atol: float, rtol: float) -> tuple[int, int] | None:
    for i, j in itertools.combinations(range(a.dim()), 2):
        if a.shape[i] == a.shape[j] and a.shape[i] > 1:
            t = a.transpose(i, j)
            if ((t - e).abs() <= atol + rtol * e.abs()).all():
                return i, j
    return None


def expect_equal(actual: Any, expected: Any, what: str, hint: str | None = None) -> None:
    """Fail unless ``actual == expected`` for numbers, booleans, strings and integer tensors."""
    if isinstance(expected, Tensor):
        actual = expect_tensor(actual, what)
        expect_shape(actual, _shape(expected), what, hint)
        wrong = actual.cpu() != expected.cpu()
        if wrong.any():
            i = int(wrong.flatten().nonzero()[0])
            fail(what, f"{int(wrong.sum())} of {wrong.numel()} entries are wrong, e.g. at "
                 f"{_where(i, _shape(expected), None)}: yours {actual.flatten()[i].item()}, "
                 f"expected {expected.flatten()[i].item()}", hint)
        return
    if isinstance(actual, Tensor) and actual.numel() == 1:
        actual = actual.item()
    if isinstance(expected, bool) or isinstance(expected, str):
        ok = actual == expected
    elif isinstance(expected, int):
        ok = isinstance(actual, (int, np.integer)) and not isinstance(actual, bool) and int(actual) == expected
        if not ok and isinstance(actual, float) and actual == expected:
            fail(what, f"returned the float {actual!r}; expected the integer {expected}",
                 "convert with int(...) after rounding, or use integer arithmetic")
    else:
        ok = actual == expected
    if not ok:
        fail(what, f"yours is {actual!r}, expected {expected!r}", hint)


def same(a: Tensor, b: Tensor, *, atol: float = 1e-8, rtol: float = 1e-6) -> bool:
    """True when ``a`` and ``b`` have the same shape and close values (compared in float64)."""
    return (tuple(a.shape) == tuple(b.shape)
            and torch.allclose(a.detach().double().cpu(), b.detach().double().cpu(), atol=atol, rtol=rtol))


def recognise(got: Tensor, mistakes: Sequence[tuple], what: str, hint: str | None = None, *,
              expected: Tensor | None = None, atol: float = 1e-8, rtol: float = 1e-6) -> None:
    """Fail with the words of the first known mistake that ``got`` reproduces.

    ``mistakes``: ``(wrong_answer, problem)`` or ``(wrong_answer, problem, hint)``, each the result a
    typical mistake gives on the check's inputs. A mistake whose result equals ``expected`` on these
    inputs is skipped (it cannot be told apart there). Nothing happens when none matches.
    """
    for wrong, problem, *own_hint in mistakes:
        if expected is not None and same(wrong, expected, atol=atol, rtol=rtol):
            continue
        if same(got, wrong, atol=atol, rtol=rtol):
            fail(what, problem, own_hint[0] if own_hint else hint)
