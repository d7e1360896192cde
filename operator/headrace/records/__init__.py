"""Run records: the JSON-lines file each top-level run writes as it goes.

The engine appends one line per changed run (the reader keeps the last line per id), log lines,
and a summary of task-run counts. Graphs, `headrace logs` and the operator read it. The kinds
of line and their fields are in `lines`; `untrusted` reads a record with each line validated.
"""

from headrace.records.reader import RunRecord, find_record, record_url

__all__ = ["RunRecord", "find_record", "record_url"]
