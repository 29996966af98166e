//! Type-checking data steps of projects on disk.
