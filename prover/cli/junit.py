"""JUnit XML reports of ``zkinfer verify`` for CI systems (GitLab, Jenkins, Azure, GitHub apps).

One ``<testsuite>`` per run, one ``<testcase>`` per proof, named by the proof path as given:
an invalid proof is a ``<failure>``, a proof that could not be checked an ``<error>``. A run that
stops before any proof (bad bundle, no proof matched) is one ``<testcase>`` named after the
bundle with an ``<error>``, so a report always exists when ``--junit`` was asked for.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from prover.cli.output import error_text
from prover.core.verify_many import VerifyReport

__all__ = ["CLASSNAME", "write_junit", "write_junit_error"]

CLASSNAME = "zkinfer.verify"
SUITE = "zkinfer verify"
# Characters XML 1.0 cannot carry at all (ezkl messages and file names may hold them)
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: object) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _suite(root: ET.Element, bundle: Path, counts: dict[str, int], seconds: float) -> ET.Element:
    for name, value in counts.items():
        root.set(name, str(value))
    root.set("time", f"{seconds:.3f}")
    suite = ET.SubElement(root, "testsuite", name=_text(f"{SUITE} {bundle}"))
    for name, value in counts.items():
        suite.set(name, str(value))
    suite.set("skipped", "0")
    suite.set("time", f"{seconds:.3f}")
    suite.set("timestamp", datetime.now(UTC).replace(microsecond=0).isoformat())
    return suite


def _write(path: Path, root: ET.Element) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def write_junit(path: Path, report: VerifyReport) -> None:
    """Write ``report`` as JUnit XML to ``path`` (parent folders are created)."""
    root = ET.Element("testsuites", name=SUITE)
    counts = {
        "tests": len(report.outcomes),
        "failures": report.count("invalid"),
        "errors": report.count("error"),
    }
    total = sum(report.timings.values())
    cases = []
    for outcome in report.outcomes:
        seconds = sum(outcome.result.timings.values()) if outcome.result is not None else 0.0
        total += seconds
        cases.append((outcome, seconds))
    suite = _suite(root, report.bundle_root, counts, total)
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("bundle", str(report.bundle_root)),
        ("bundle_digest", report.bundle_digest),
        ("model_id", report.model_id),
        ("srs_provenance", report.srs_provenance),
    ):
        if value:
            ET.SubElement(props, "property", name=name, value=_text(value))
    for outcome, seconds in cases:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=CLASSNAME,
            name=_text(outcome.proof_path),
            time=f"{seconds:.3f}",
        )
        message = _text(outcome.message)
        if outcome.status == "invalid":
            failure = ET.SubElement(case, "failure", type="InvalidProof", message=message)
            failure.text = message
        elif outcome.status == "error":
            kind = type(outcome.error).__name__
            error = ET.SubElement(case, "error", type=kind, message=message)
            error.text = message
    if report.warnings:
        ET.SubElement(suite, "system-err").text = _text("\n".join(report.warnings))
    _write(path, root)


def write_junit_error(path: Path, bundle: Path, exc: BaseException) -> None:
    """Write a report of a run that stopped before checking any proof, naming why."""
    root = ET.Element("testsuites", name=SUITE)
    suite = _suite(root, bundle, {"tests": 1, "failures": 0, "errors": 1}, 0.0)
    case = ET.SubElement(
        suite, "testcase", classname=CLASSNAME, name=_text(f"bundle {bundle}"), time="0.000"
    )
    message = _text(error_text(exc))
    error = ET.SubElement(case, "error", type=type(exc).__name__, message=message)
    error.text = message
    _write(path, root)
