"""The case files: what timelines and responsibility chains read of batch streams, stored."""
