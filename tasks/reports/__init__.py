"""What people read: the run report, the QA summary, review sheets."""
