"""The plugin contract: what a solver plugin and the package promise each other.

``Solver`` and ``Learner`` (the interface a plugin implements), ``Answer`` and ``AnswerInfo``
(what it hands back and which of its details the package reads), ``Status`` (the five outcomes),
``Label`` (how a report names it) and the limits every command shares. It sits directly above
the model and below everything else, so the learning layer can build its plugin base on it and
the harness and the reports can read plugins through it, never by a plugin's name."""
