"""The applications built on the library: run configurations and tasks, demos, diagnostics, experiments, viewer."""
