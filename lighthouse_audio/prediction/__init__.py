"""Predicting moments with a trained model: loading, chunking long recordings, batching queries."""
