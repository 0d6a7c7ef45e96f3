"""Quality assessment before any restoration: the diagnosis of each defect, the QA verdict, capture-specification checks, and `restorium qa`'s check of one file."""
