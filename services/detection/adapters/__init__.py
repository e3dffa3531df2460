"""Tables, repositories, projections."""
