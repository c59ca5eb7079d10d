"""The report door: assessments and reference runs as Markdown, rendered with jinja2 templates
whose every printed value is escaped (`markdown`)."""
