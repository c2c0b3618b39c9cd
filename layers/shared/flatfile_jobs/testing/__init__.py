"""Test kit: a fake Flatfile API on loopback and job:ready event builders."""
