"""What a run leaves for people: report.md, report.html and its figures."""
