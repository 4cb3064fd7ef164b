using System.Net;
using StackExchange.Redis;

namespace ClusterJobs.Protocol.Tests;

public class RedisConnectionParseSpecs
{
    private static (string Host, int Port) SingleEndPoint(ConfigurationOptions options)
    {
        var endPoint = Assert.Single(options.EndPoints);
        return endPoint switch
        {
            DnsEndPoint dns => (dns.Host, dns.Port),
            IPEndPoint ip => (ip.Address.ToString(), ip.Port),
            _ => throw new Xunit.Sdk.XunitException($"Unexpected endpoint {endPoint}"),
        };
    }

    [Fact]
    public void A_redis_url_with_host_and_port_connects_there_without_tls_or_credentials()
    {
        var options = RedisConnection.Parse("redis://cache.internal:6380");

        Assert.Equal(("cache.internal", 6380), SingleEndPoint(options));
        Assert.False(options.Ssl);
        Assert.Null(options.Password);
        Assert.Null(options.User);
        Assert.Null(options.DefaultDatabase);
    }

    [Fact]
    public void A_job_client_reads_its_connection_on_the_thread_pool_unless_told_to_use_StackExchange_Redis_threads()
    {
        // The thread pool answers a producer's enqueue sooner (JobClientOptions.RedisIo; docs/benchmarks.md).
        var pooled = JobClient.ConnectionOptions("redis://cache.internal:6380/2", new JobClientOptions());
        var dedicated = JobClient.ConnectionOptions("redis://cache.internal:6380/2", new JobClientOptions { RedisIo = RedisIoThreads.Dedicated });

        Assert.Same(SocketManager.ThreadPool, pooled.SocketManager);
        Assert.NotSame(SocketManager.ThreadPool, dedicated.SocketManager);
        foreach (var options in new[] { pooled, dedicated })
        {
            Assert.Equal(("cache.internal", 6380), SingleEndPoint(options));
            Assert.Equal(2, options.DefaultDatabase);
            Assert.Equal("clusterjobs-client", options.ClientName);
            Assert.True(options.AbortOnConnectFail);
        }
    }

    [Fact]
    public void A_redis_url_without_a_port_uses_6379() =>
        Assert.Equal(("cache.internal", 6379), SingleEndPoint(RedisConnection.Parse("redis://cache.internal")));

    [Fact]
    public void A_rediss_url_without_a_port_also_uses_6379() =>
        Assert.Equal(6379, SingleEndPoint(RedisConnection.Parse("rediss://cache.internal")).Port);

    [Fact]
    public void A_password_after_an_empty_user_and_a_database_path_are_both_applied()
    {
        var options = RedisConnection.Parse("redis://:s3cret@cache.internal:6380/2");

        Assert.Equal(("cache.internal", 6380), SingleEndPoint(options));
        Assert.Equal("s3cret", options.Password);
        Assert.Null(options.User);
        Assert.Equal(2, options.DefaultDatabase);
    }

    [Fact]
    public void A_user_and_password_log_in_as_that_ACL_user()
    {
        var options = RedisConnection.Parse("redis://worker:s3cret@cache.internal");

        Assert.Equal("worker", options.User);
        Assert.Equal("s3cret", options.Password);
        Assert.Equal(("cache.internal", 6379), SingleEndPoint(options));
    }

    [Fact]
    public void A_rediss_url_turns_on_tls()
    {
        var options = RedisConnection.Parse("rediss://:pw@cache.internal:6380");

        Assert.True(options.Ssl);
        Assert.Equal("pw", options.Password);
    }

    [Fact]
    public void The_scheme_is_case_insensitive() => Assert.True(RedisConnection.Parse("REDISS://cache.internal").Ssl);

    [Fact]
    public void A_percent_encoded_password_is_decoded()
    {
        var options = RedisConnection.Parse("redis://:p%40ss%3Aw%2Fo%25rd@cache.internal:6379");

        Assert.Equal("p@ss:w/o%rd", options.Password);
    }

    [Fact]
    public void A_percent_encoded_user_is_decoded() =>
        Assert.Equal("ops@team", RedisConnection.Parse("redis://ops%40team:pw@cache.internal").User);

    [Fact]
    public void A_trailing_slash_selects_no_database() =>
        Assert.Null(RedisConnection.Parse("redis://cache.internal:6379/").DefaultDatabase);

    [Fact]
    public void A_StackExchange_configuration_string_is_passed_through_unchanged()
    {
        var options = RedisConnection.Parse("cache.internal:6380,password=s3cret,ssl=true,defaultDatabase=3");

        Assert.Equal(("cache.internal", 6380), SingleEndPoint(options));
        Assert.Equal("s3cret", options.Password);
        Assert.True(options.Ssl);
        Assert.Equal(3, options.DefaultDatabase);
    }

    [Theory]
    [InlineData("redis://cache.internal:6379/abc")]
    [InlineData("redis://cache.internal:6379/-1")]
    [InlineData("redis://cache.internal:6379/1/2")]
    public void A_path_that_is_not_a_database_number_is_rejected(string url)
    {
        var ex = Assert.Throws<ArgumentException>(() => RedisConnection.Parse(url));
        Assert.Equal("redisUrl", ex.ParamName);
        Assert.Contains("database number", ex.Message);
    }

    [Fact]
    public void A_rejected_url_is_quoted_in_the_error_without_its_password()
    {
        var ex = Assert.Throws<ArgumentException>(() => RedisConnection.Parse("redis://:hunter2@cache.internal/abc"));

        Assert.DoesNotContain("hunter2", ex.Message);
        Assert.Contains("cache.internal", ex.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public void An_empty_url_is_rejected(string url) =>
        Assert.Equal("redisUrl", Assert.Throws<ArgumentException>(() => RedisConnection.Parse(url)).ParamName);

    [Fact]
    public void A_redis_url_without_a_host_is_rejected() =>
        Assert.Throws<ArgumentException>(() => RedisConnection.Parse("redis://"));
}

public class RedisConnectionRedactSpecs
{
    [Theory]
    [InlineData("redis://:hunter2@cache.internal:6379", "redis://:***@cache.internal:6379")]
    [InlineData("redis://worker:hunter2@cache.internal:6379/2", "redis://worker:***@cache.internal:6379/2")]
    [InlineData("rediss://:hunter2@cache.internal", "rediss://:***@cache.internal")]
    public void A_url_password_is_replaced_by_stars_and_the_rest_kept(string url, string redacted) =>
        Assert.Equal(redacted, RedisConnection.Redact(url));

    [Theory]
    [InlineData("cache.internal:6379,password=hunter2,ssl=true", "cache.internal:6379,password=***,ssl=true")]
    [InlineData("cache.internal:6379,password=hunter2", "cache.internal:6379,password=***")]
    [InlineData("cache.internal:6379,Password=hunter2,ssl=true", "cache.internal:6379,Password=***,ssl=true")]
    public void A_configuration_string_password_is_replaced_by_stars_and_the_rest_kept(string config, string redacted) =>
        Assert.Equal(redacted, RedisConnection.Redact(config));

    [Theory]
    [InlineData("redis://cache.internal:6379")]
    [InlineData("cache.internal:6379,ssl=true")]
    public void A_url_without_a_password_is_left_as_it_is(string url) => Assert.Equal(url, RedisConnection.Redact(url));

    [Theory]
    [InlineData("redis://:ab/cd@cache.internal:6379", "ab/cd")]
    [InlineData("redis://worker:12/34?x@cache.internal:6379", "12/34?x")]
    public void A_password_holding_an_unencoded_slash_or_question_mark_is_hidden_in_the_url_and_in_the_error(string url, string password)
    {
        Assert.DoesNotContain(password, RedisConnection.Redact(url));
        var error = Assert.Throws<ArgumentException>(() => RedisConnection.Parse(url));
        Assert.DoesNotContain(password, error.Message);
        Assert.Contains("must be percent-encoded", error.Message);
    }

    [Fact]
    public void Query_parameters_are_refused_naming_the_path_for_the_database()
    {
        var error = Assert.Throws<ArgumentException>(() => RedisConnection.Parse("redis://:hunter2@cache.internal:6379?db=2"));
        Assert.Contains("query parameters are not read; give the database as the path (redis://host:6379/2)", error.Message);
        Assert.DoesNotContain("hunter2", error.Message);
    }

    [Fact]
    public void A_percent_encoded_password_is_hidden() =>
        Assert.DoesNotContain("p%40ss", RedisConnection.Redact("redis://:p%40ss@cache.internal:6379"));

    /// <summary>Parse reads <c>redis://secret@host</c> as a password alone, so Redact must hide it too.</summary>
    [Fact]
    public void A_password_given_without_a_colon_is_hidden_too()
    {
        const string url = "redis://hunter2@cache.internal:6379";
        Assert.Equal("hunter2", RedisConnection.Parse(url).Password);

        Assert.DoesNotContain("hunter2", RedisConnection.Redact(url));
    }

    /// <summary>System.Uri decodes %41 to A in UserInfo, so a literal replace of UserInfo would miss the raw text.</summary>
    [Fact]
    public void A_password_is_hidden_however_its_characters_are_percent_encoded()
    {
        const string url = "redis://:hunter%32@cache.internal:6379";
        Assert.Equal("hunter2", RedisConnection.Parse(url).Password);

        Assert.DoesNotContain("hunter", RedisConnection.Redact(url));
    }
}
