"""From stored rows to what a reader sees: Tables IV/V, figures, the HTML/Markdown report and the
one-command reproductions."""
