"""Progress output, one way for every long step (training, feature extraction, KSH's bits,
image loading, downloads): a tqdm bar when stderr is a terminal; when it is redirected to a
file, a plain line at every tenth of the work instead of a bar's carriage-return updates
(a DSH training wrote 174 KB of them into a log), and none for a step that ends within
``quiet_for`` seconds (tests and small runs stay silent)."""

import sys
import time

STEPS = 10  # lines per step when redirected: one every 10%


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _Silent:
    """The bar of a step whose progress was not asked for."""

    n = 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, **kw) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Lines(_Silent):
    """Sparse progress lines for a redirected stream: ``desc: 30% (3,000/10,000 it), 12 s``."""

    def __init__(self, total, desc: str, unit: str, initial: int, stream, quiet_for: float):
        self.total, self.desc, self.unit, self.stream = total, desc, unit, stream
        self.n = initial
        self.start = time.monotonic()
        self.quiet_for = quiet_for
        self.shown = self._step()  # the step already reached (a resumed run starts there)
        self.postfix = ""

    def _step(self) -> int:
        return min(STEPS, self.n * STEPS // self.total) if self.total else 0

    def update(self, n: int = 1) -> None:
        self.n += n
        step = self._step()
        if step > self.shown:
            self.shown = step
            if time.monotonic() - self.start >= self.quiet_for:
                self._print()

    def _print(self) -> None:
        pct = f"{100 * self.n // self.total}% " if self.total else ""
        total = f"/{self.total:,}" if self.total else ""
        print(f"{self.desc}: {pct}({self.n:,}{total} {self.unit}), {time.monotonic() - self.start:.0f} s{self.postfix}",
              file=self.stream, flush=True)

    def set_postfix(self, **kw) -> None:
        self.postfix = "".join(f", {k} {v}" for k, v in kw.items())


def progress(total: int | None, desc: str, unit: str = "it", enabled: bool = True, initial: int = 0,
             unit_scale: bool = False, leave: bool = True, quiet_for: float = 5.0, stream=None):
    """A progress bar over ``total`` units: tqdm on a terminal, sparse lines otherwise,
    nothing when not ``enabled``. Use as a context manager or call ``close()``; ``update(n)``
    and ``set_postfix(**values)`` as tqdm's."""
    if not enabled:
        return _Silent()
    stream = sys.stderr if stream is None else stream
    if _is_terminal(stream):
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit=unit, unit_scale=unit_scale, leave=leave,
                    dynamic_ncols=True, file=stream)
    return _Lines(total, desc, unit, initial, stream, quiet_for)
