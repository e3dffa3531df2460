"""Tables, repositories and the site projection."""
