"""JSON from files zkinfer does not trust (inputs, proofs, bundles), parsed with a nesting limit.

Python's C JSON decoder recurses once per nesting level and relies on the interpreter's recursion
limit to stop; web3.py's dependency py_ecc raises that limit to 100,000 on import, after which a
file of a few hundred kilobytes of ``[`` overflows the C stack and kills the process. The depth
is therefore checked before the decoder sees the text.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["MAX_DEPTH", "loads_bounded", "nesting_depth"]

#: Far deeper than any input, proof, manifest or settings file zkinfer reads.
MAX_DEPTH = 64
# A string literal, or an unterminated one running to the end: possessive, so the scan stays
# linear even for text made of nothing but quotes and backslashes.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def nesting_depth(text: bytes) -> int:
    """The deepest nesting of arrays and objects in ``text`` (brackets inside strings ignored)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', text)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def loads_bounded(text: str | bytes, **kwargs: Any) -> Any:
    """``json.loads`` that raises ``ValueError`` for nesting deeper than :data:`MAX_DEPTH`.

    Bytes must be UTF-8 (``UnicodeDecodeError``, a ``ValueError``, otherwise): ``json.loads``
    would also accept UTF-16 and UTF-32, which the byte-wise depth scan cannot read.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    depth = nesting_depth(text.encode("utf-8", "surrogatepass"))
    if depth > MAX_DEPTH:
        raise ValueError(f"nested {depth} levels deep (at most {MAX_DEPTH} are accepted)")
    return json.loads(text, **kwargs)
