"""Tests of the checkpoint SDK."""
