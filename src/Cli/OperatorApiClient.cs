using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ClusterJobs.Cli;

/// <summary>A refusal or failure of the operator API, with the reason it gave (its problem details).</summary>
public sealed class ApiException(string message, int? status = null) : Exception(message)
{
    /// <summary>The HTTP status; null when the API could not be reached at all.</summary>
    public int? Status { get; } = status;
}

/// <summary>A command line the CLI cannot act on (a value that System.CommandLine's own checks cannot see is wrong): exit 2.</summary>
public sealed class CommandLineException(string message) : Exception(message);

/// <summary>
/// Talks to a node's operator API (README.md, "Operating a cluster"). Answers stay JSON: the CLI shows what the API
/// says, so it need not follow every field the node adds.
/// </summary>
public sealed class OperatorApiClient(HttpClient http, Uri api, string? token)
{
    public async Task<JsonNode?> GetAsync(string path, CancellationToken ct) => await SendAsync(HttpMethod.Get, path, null, ct);

    public async Task<JsonNode?> PostAsync(string path, object? body, CancellationToken ct) => await SendAsync(HttpMethod.Post, path, body, ct);

    public async Task<JsonNode?> DeleteAsync(string path, CancellationToken ct) => await SendAsync(HttpMethod.Delete, path, null, ct);

    public async Task<JsonNode?> PutAsync(string path, object body, CancellationToken ct) => await SendAsync(HttpMethod.Put, path, body, ct);

    private async Task<JsonNode?> SendAsync(HttpMethod method, string path, object? body, CancellationToken ct)
    {
        var url = new Uri(api, "api/" + path);
        using var request = new HttpRequestMessage(method, url);
        if (token is { Length: > 0 }) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (body is not null) request.Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
        else if (method != HttpMethod.Get) request.Content = new StringContent("", Encoding.UTF8, "application/json");
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, ct);
        }
        catch (HttpRequestException ex)
        {
            throw new ApiException($"Could not reach the operator API at {api} ({ex.Message}). Is a node running with " +
                                   "CLUSTERJOBS_HTTP_PORT set? Point --api (or CLUSTERJOBS_API) at it.");
        }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new ApiException($"The operator API at {api} did not answer within {http.Timeout.TotalSeconds:0} s.");
        }
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(ct);
            JsonNode? json = null;
            try { json = text.Length == 0 ? null : JsonNode.Parse(text); }
            catch (JsonException) { /* not JSON: said below with its status */ }
            var status = (int)response.StatusCode;
            // Every answer of the API is JSON: anything else came from something else at that address (a proxy, a web app)
            if (response.IsSuccessStatusCode)
                return json ?? throw new ApiException($"{url} answered HTTP {status} with {(text.Length == 0 ? "no body" : $"no JSON ({response.Content.Headers.ContentType?.MediaType ?? "no content type"})")}, " +
                                                      "not as the operator API does: does --api point at a ClusterJobs node's HTTP port?", status);
            var detail = Text(json, "detail") ?? Text(json, "title") ?? text.Trim();
            if (response.StatusCode == HttpStatusCode.NotFound && Text(json, "detail") is null)
                detail = $"{url} is not an operator API endpoint: does --api point at a ClusterJobs node's HTTP port?";
            throw new ApiException(detail.Length > 0 ? detail : $"HTTP {status} {response.ReasonPhrase}", status);
        }
    }

    /// <summary>A problem's text field, when the answer is an object that has it as a string (a proxy's error page may be any JSON).</summary>
    private static string? Text(JsonNode? json, string field) =>
        json is JsonObject o && o[field] is JsonValue v && v.TryGetValue<string>(out var text) ? text : null;
}
