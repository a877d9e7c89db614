"""The second stage of two-stage recommendations: candidates ranked by a learned model (docs/adr/0008)."""
