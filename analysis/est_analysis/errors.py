"""The one kind of error bad input raises: the CLI prints it as `est-analysis: error: FILE: KEY: message` and
exits 2."""


class AnalysisError(Exception):
    def __init__(self, path, key, message):
        self.path, self.key = path, key
        where = f"{path}: {key}" if key else f"{path}"
        super().__init__(f"{where}: {message}")
