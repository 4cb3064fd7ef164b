using ClusterJobs.Node.Queues;
using ClusterJobs.Protocol;
using ClusterJobs.Tests.Shared;
using Microsoft.Extensions.DependencyInjection;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace ClusterJobs.Integration.Tests;

/// <summary>
/// The dashboard in a real browser (headless Chromium through Playwright) against a node's operator API on real Redis:
/// what an operator sees, and the buttons they press.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class DashboardSpecs(BrokerFixture brokers, ITestOutputHelper output)
{
    private readonly string _prefix = BrokerFixture.NewPrefix();
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task The_dashboard_shows_queues_and_members_resumes_a_queue_replays_a_dead_letter_runs_a_recurring_job_forgets_an_emptied_queue_and_looks_up_a_job()
    {
        await using var node = await TestNode.StartAsync(brokers.Url(BrokerKind.Redis), _prefix, o => o.HttpPort = 0);
        var dead = await node.Client.EnqueueAsync("fail", new { message = "disk full" }, new EnqueueOptions { MaxAttempts = 1 });
        await node.Client.WaitAsync(dead, Wait);
        await node.Services.GetRequiredService<QueueControl>().PauseAsync("default");
        var waiting = new List<string>();
        for (var i = 0; i < 3; i++) waiting.Add(await node.Client.EnqueueAsync("add", new[] { i, 1 }));
        var orphan = await node.Client.EnqueueAsync("add", new[] { 1, 1 }, new EnqueueOptions { Queue = "orphans" });

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium(), Headless = true, Args = ["--no-sandbox"],
        });
        var page = await browser.NewPageAsync();
        page.Console += (_, message) => output.WriteLine($"browser: {message.Text}");
        SetDefaultExpectTimeout(15_000);
        await page.GotoAsync(node.OperatorAddress + "?page_size=2");

        var queue = page.Locator("tr[data-queue=default]");
        await Expect(queue.Locator("td[data-count=ready]")).ToHaveTextAsync("3");
        await Expect(queue.Locator("td[data-count=dead]")).ToHaveTextAsync("1");
        await Expect(queue.Locator("td[data-settings]")).ToHaveTextAsync("paused");
        await Expect(page.Locator("tr[data-queue=orphans]")).ToContainTextAsync("no node");
        await Expect(page.Locator("[data-testid=members] tbody")).ToContainTextAsync(node.System.Name);
        await Expect(page.Locator("[data-testid=health]")).ToHaveTextAsync("healthy");
        await Expect(page.Locator("[data-testid=members] td[data-busy]")).ToHaveTextAsync("0 / 8");

        await queue.Locator("td[data-count=ready] a").ClickAsync();
        var listed = page.Locator("[data-testid=list] tbody");
        var pager = page.Locator("#list-pager");
        await Expect(pager).ToContainTextAsync("1-2 of 3");
        await Expect(listed.Locator("tr")).ToHaveCountAsync(2);
        foreach (var id in waiting[..2]) await Expect(listed).ToContainTextAsync(id);
        await pager.GetByRole(AriaRole.Button, new() { Name = "Next" }).ClickAsync();
        await Expect(pager).ToContainTextAsync("3 of 3");
        await Expect(listed.Locator("tr")).ToHaveCountAsync(1);
        await Expect(listed).ToContainTextAsync(waiting[2]);
        await Expect(pager.GetByRole(AriaRole.Button, new() { Name = "Next" })).ToBeDisabledAsync();

        await queue.GetByRole(AriaRole.Button, new() { Name = "Resume" }).ClickAsync();
        await Expect(page.Locator("[data-testid=message]")).ToHaveTextAsync("default resumed");
        foreach (var id in waiting) Assert.Equal(JobState.Succeeded, (await node.Client.WaitAsync(id, Wait)).State);
        await Expect(queue.Locator("td[data-count=ready]")).ToHaveTextAsync("0");
        await Expect(queue.Locator("td[data-total=succeeded]")).ToHaveTextAsync("3");
        // The queue's chart of the last minutes has drawn the refresh in which the three ended.
        await Expect(queue.Locator("td[data-chart]")).ToHaveAttributeAsync("data-peak", new Regex(@"^(?!0\.0$)\d+\.\d$"));
        await Expect(queue.Locator("td[data-chart] svg polyline")).ToHaveCountAsync(1);
        await Expect(listed.Locator("tr")).ToHaveCountAsync(0); // the list follows: its jobs ran
        await Expect(pager).ToHaveTextAsync(""); // and shows its first page again, not "none from 3 of 0"
        await Expect(queue.Locator("td[data-settings]")).ToHaveTextAsync("");

        await queue.GetByRole(AriaRole.Button, new() { Name = "Dead letters" }).ClickAsync();
        var letter = page.Locator("[data-testid=dead] tbody tr");
        await Expect(letter).ToContainTextAsync(dead);
        await Expect(letter).ToContainTextAsync("InvalidOperationException: disk full");
        await letter.GetByRole(AriaRole.Button, new() { Name = "Replay" }).ClickAsync();
        await Expect(page.Locator("[data-testid=message]")).ToHaveTextAsync($"{dead} replayed");
        var replay = (await node.Client.GetAsync(dead))!.ReplayedAs!;
        Assert.Equal(JobState.DeadLettered, (await node.Client.WaitAsync(replay, Wait)).State); // "fail" fails again
        await Expect(letter).ToContainTextAsync(replay);
        var replayAlls = 0;
        page.Request += (_, request) => { if (request.Method == "POST" && request.Url.Contains("/dead/replay")) Interlocked.Increment(ref replayAlls); };
        await page.Locator("#replay-all").DblClickAsync();
        await Expect(page.Locator("[data-testid=message]")).ToHaveTextAsync("dead letters of default replayed");
        Assert.Equal(1, replayAlls); // a double-click sends one replay-all, not two
        var again = (await node.Client.GetAsync(replay))!.ReplayedAs!;
        Assert.Equal(JobState.DeadLettered, (await node.Client.WaitAsync(again, Wait)).State);
        await Expect(letter).ToContainTextAsync(again);
        page.Dialog += (_, dialog) => dialog.AcceptAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete all" }).ClickAsync();
        await Expect(page.Locator("[data-testid=message]")).ToHaveTextAsync("dead letters of default deleted");
        await Expect(letter).ToHaveCountAsync(0);
        Assert.Null(await node.Client.GetAsync(again));

        await node.Client.AddOrUpdateRecurringAsync("weekly", "0 8 * * MON", "add", new[] { 2, 2 });
        await queue.GetByRole(AriaRole.Button, new() { Name = "Recurring" }).ClickAsync();
        var schedule = page.Locator("[data-testid=recurring] tr[data-name=weekly]");
        await Expect(schedule).ToContainTextAsync("0 8 * * MON");
        await schedule.GetByRole(AriaRole.Button, new() { Name = "Run now" }).ClickAsync();
        await Expect(page.Locator("[data-testid=message]")).ToHaveTextAsync("weekly: a job enqueued now");
        await Expect(queue.Locator("td[data-total=succeeded]")).ToHaveTextAsync("4"); // the three that waited, and the one it just enqueued
        await schedule.GetByRole(AriaRole.Button, new() { Name = "Pause" }).ClickAsync();
        await Expect(page.Locator("[data-testid=message]")).ToHaveTextAsync("weekly paused");
        await Expect(schedule).ToContainTextAsync("paused since");
        Assert.NotNull((await node.Client.GetRecurringAsync("default", "weekly"))!.PausedAt);
        await schedule.GetByRole(AriaRole.Button, new() { Name = "Resume" }).ClickAsync();
        await Expect(page.Locator("[data-testid=message]")).ToHaveTextAsync("weekly resumed");
        await Expect(schedule.GetByRole(AriaRole.Button, new() { Name = "Pause" })).ToBeVisibleAsync();
        Assert.Null((await node.Client.GetRecurringAsync("default", "weekly"))!.PausedAt);
        await schedule.GetByRole(AriaRole.Button, new() { Name = "Remove" }).ClickAsync();
        await Expect(page.Locator("[data-testid=message]")).ToHaveTextAsync("weekly removed");
        await Expect(page.Locator("[data-testid=recurring] tbody")).ToHaveTextAsync("No recurring jobs in this queue.");
        Assert.Null(await node.Client.GetRecurringAsync("default", "weekly"));

        // The queue no node serves, emptied, can be taken off the list (its totals keep it there otherwise).
        Assert.True(await node.Client.CancelAsync(orphan));
        var orphans = page.Locator("tr[data-queue=orphans]");
        await Expect(orphans.Locator("td[data-count=ready]")).ToHaveTextAsync("0");
        await orphans.GetByRole(AriaRole.Button, new() { Name = "Forget" }).ClickAsync();
        await Expect(page.Locator("[data-testid=message]")).ToHaveTextAsync("orphans forgotten");
        await Expect(orphans).ToHaveCountAsync(0);
        await Expect(queue.GetByRole(AriaRole.Button, new() { Name = "Forget" })).ToHaveCountAsync(0); // a served queue has none

        // A key of the queue written by hand with another type: the row says so (its title says which key), the rest stays.
        await node.Redis.GetDatabase().StringSetAsync(node.Keys.Queue("default").Dead, "overwritten by hand");
        await Expect(queue.Locator("td[data-problem]")).ToContainTextAsync("default (unreadable keys)");
        await Expect(queue.Locator("td[data-problem]")).ToHaveAttributeAsync("title", new System.Text.RegularExpressions.Regex("WRONGTYPE"));
        await Expect(queue.Locator("td[data-total=succeeded]")).ToHaveTextAsync("4");

        await page.Locator("[data-testid=job-id]").FillAsync(waiting[2]);
        await page.GetByRole(AriaRole.Button, new() { Name = "Look up" }).ClickAsync();
        await Expect(page.Locator("[data-testid=job-state]")).ToHaveTextAsync("succeeded");
        await Expect(page.Locator("[data-testid=job] pre")).ToContainTextAsync("\"result\": 3");
    }

    /// <summary>The system's Chromium (CI installs it: apt-get install chromium), or CLUSTERJOBS_CHROMIUM.</summary>
    private static string Chromium() =>
        new[] { Environment.GetEnvironmentVariable("CLUSTERJOBS_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser" }
            .FirstOrDefault(p => p is { Length: > 0 } && File.Exists(p))
        ?? throw new InvalidOperationException("The dashboard specs need Chromium: apt-get install chromium, or set CLUSTERJOBS_CHROMIUM to its path.");
}
