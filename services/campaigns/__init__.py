"""Survey campaigns: a closure shock launches door-to-door outreach over the territory."""
