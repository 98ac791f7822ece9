"""The study report: ``report.html`` with PNG plots, ``trials.csv`` and ``results.json``.

It reads storage only: nothing runs, nothing is fitted, the test set is never touched.
One module a job: ``data`` reads the study, ``tables`` shapes its rows, ``plots`` draws
with matplotlib, ``html`` renders the Jinja2 template ``report.html.j2``, and ``write``
puts the files in their folder::

    import tunedag
    spec = tunedag.load_spec("specs/quickstart.yaml")
    files = tunedag.write_report(spec, "report/")
    files.html  # report/report.html
"""

from tunedag.report.write import ReportFiles, write_report

__all__ = ["ReportFiles", "write_report"]
