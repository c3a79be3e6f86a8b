"""unkai: a self-hosted serverless platform with AWS Lambda semantics."""
