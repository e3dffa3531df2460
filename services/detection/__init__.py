"""Project detection: survey answers and the crisis cell's declarations become tracked projects."""
