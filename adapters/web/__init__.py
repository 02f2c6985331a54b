"""The admin dashboard, its JSON API and Graph's change-notification endpoint (``serve``)."""
