"""Results: records (the one definition of a record), the leaderboard (gather, tables,
Markdown/CSV, README), reproductions, prediction files and the PNG plots of ``bench report``."""
