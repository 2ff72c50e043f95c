async def test_redis_answers(redis_client) -> None:
    """The test setup found or started a Redis."""
    assert await redis_client.ping()
