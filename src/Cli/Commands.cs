using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace ClusterJobs.Cli;

/// <summary>The command tree: each command is one call of the operator API and a view of its answer.</summary>
internal static class Commands
{
    public static readonly Option<string?> Api = new("--api")
    {
        Description = $"The operator API of any node (CLUSTERJOBS_API; default {CliApp.DefaultApi})", Recursive = true,
    };
    public static readonly Option<string?> Token = new("--token")
    {
        Description = "The API's token, when it has one: every call but the health check needs it (CLUSTERJOBS_HTTP_TOKEN)", Recursive = true,
    };
    public static readonly Option<int> Timeout = new("--timeout")
    {
        Description = "Seconds to wait for the API's answer (default 30; a replay --all or purge-dead of many letters takes longer)",
        Recursive = true, DefaultValueFactory = _ => 30,
        Validators = { r => { if (r.GetValue(Timeout!) is < 1 or > 86_400) r.AddError("--timeout must be from 1 to 86400 seconds."); } },
    };
    public static readonly Option<bool> Json = new("--json") { Description = "Print the API's JSON instead of tables", Recursive = true };

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static RootCommand Build(IAnsiConsole console, TextWriter stdout, Func<string, string?> env, Func<ParseResult, OperatorApiClient> connect)
    {
        var root = new RootCommand("ClusterJobs: see and steer a cluster's queues, members and jobs through a node's operator API.")
        {
            Api, Token, Json, Timeout,
        };

        // Runs one command: prints its answer as JSON with --json, else through its view.
        void Add(Command command, Func<ParseResult, OperatorApiClient, CancellationToken, Task<JsonNode?>> call, Action<JsonNode?, ParseResult> view,
            Command? parent = null)
        {
            command.SetAction(async (result, ct) =>
            {
                var answer = await call(result, connect(result), ct);
                if (result.GetValue(Json)) stdout.WriteLine(answer?.ToJsonString(Indented) ?? "null");
                else view(answer, result);
                return 0;
            });
            (parent ?? root).Subcommands.Add(command);
        }

        var status = new Command("status", "The cluster's members and every queue (jobs by place, who serves it, its settings)");
        Add(status, async (_, api, ct) =>
        {
            var cluster = api.GetAsync("cluster", ct);
            var queues = api.GetAsync("queues", ct);
            return new JsonObject { ["cluster"] = await cluster, ["queues"] = await queues };
        }, (answer, _) =>
        {
            Members(console, answer!["cluster"]!);
            console.WriteLine();
            Queues(console, answer["queues"]!.AsArray());
        });

        Add(new Command("queues", "Every queue: jobs ready, scheduled, running, waiting and dead; who serves it; its settings"),
            (_, api, ct) => api.GetAsync("queues", ct), (answer, _) => Queues(console, answer!.AsArray()));

        var queueName = new Argument<string>("queue") { Description = "The queue's name" };
        var queue = new Command("queue", "One queue, with its router's counters") { queueName };
        Add(queue, (r, api, ct) => api.GetAsync("queues/" + Escape(r.GetValue(queueName)!), ct), (answer, _) => Queue(console, answer!));

        var jobId = new Argument<string>("id") { Description = "The job's id (<queue>:<suffix>)" };
        var job = new Command("job", "A job's state, arguments, result or error, attempts and times") { jobId };
        Add(job, (r, api, ct) => api.GetAsync("jobs/" + Escape(r.GetValue(jobId)!), ct), (answer, _) => Job(console, answer!));

        var place = new Option<string>("--place") { Description = "ready (default), scheduled, running or waiting", DefaultValueFactory = _ => "ready" };
        place.AcceptOnlyFromAmong("ready", "scheduled", "running", "waiting");
        var listCount = new Option<int>("--count") { Description = "At most this many (default 50, at most 500)", DefaultValueFactory = _ => 50 };
        var jobs = new Command("jobs", "A queue's jobs in one place, in the order they leave it (next to run, soonest due, oldest lease)")
        {
            queueName, place, listCount,
        };
        Add(jobs, (r, api, ct) => api.GetAsync($"queues/{Escape(r.GetValue(queueName)!)}/jobs?place={r.GetValue(place)}&count={r.GetValue(listCount)}", ct),
            (answer, _) => JobList(console, answer!.AsArray()));

        var task = new Argument<string>("task") { Description = "The task's name, as the nodes register it (send_email)" };
        var args = new Option<string?>("--args") { Description = "Its arguments as JSON: an object bound by name or an array by position" };
        var onQueue = new Option<string?>("--queue", "-q") { Description = "The queue (default: default)" };
        var priority = new Option<int?>("--priority") { Description = "0 (default) to 9, higher first" };
        var countdown = new Option<double?>("--countdown") { Description = "Seconds to wait before it may run" };
        var maxAttempts = new Option<int?>("--max-attempts") { Description = "Attempts it may use (default: the task's policy)" };
        var enqueue = new Command("enqueue", "Queue a job; prints its id") { task, args, onQueue, priority, countdown, maxAttempts };
        Add(enqueue, (r, api, ct) =>
        {
            var body = new JsonObject
            {
                ["task"] = r.GetValue(task), ["args"] = ParsedArgs(r.GetValue(args)), ["queue"] = r.GetValue(onQueue), ["priority"] = r.GetValue(priority),
                ["countdown_seconds"] = r.GetValue(countdown), ["max_attempts"] = r.GetValue(maxAttempts),
            };
            return api.PostAsync("jobs", body, ct);
        }, (answer, _) => stdout.WriteLine(answer!["id"]!.GetValue<string>()));

        var cancel = new Command("cancel", "Cancel a job: one not started ends at once; a running one is told to stop") { jobId };
        Add(cancel, (r, api, ct) => api.PostAsync($"jobs/{Escape(r.GetValue(jobId)!)}/cancel", null, ct), (answer, _) =>
            stdout.WriteLine(answer!["outcome"]!.GetValue<string>() == "requested"
                ? $"{answer["id"]}: running; its node was told to cancel it"
                : $"{answer["id"]}: cancelled"));

        var pause = new Command("pause", "Pause a queue: its jobs wait, running ones finish") { queueName };
        Add(pause, (r, api, ct) => api.PostAsync($"queues/{Escape(r.GetValue(queueName)!)}/pause", null, ct),
            (answer, r) => stdout.WriteLine($"{r.GetValue(queueName)}: {SettingsText(answer)}"));
        var resume = new Command("resume", "Resume a paused queue") { queueName };
        Add(resume, (r, api, ct) => api.PostAsync($"queues/{Escape(r.GetValue(queueName)!)}/resume", null, ct),
            (answer, r) => stdout.WriteLine($"{r.GetValue(queueName)}: {SettingsText(answer)}"));

        var forget = new Command("forget", "Take a queue that holds nothing and that no node serves off the lists (its totals are deleted)") { queueName };
        Add(forget, (r, api, ct) => api.DeleteAsync($"queues/{Escape(r.GetValue(queueName)!)}", ct),
            (_, r) => stdout.WriteLine($"{r.GetValue(queueName)}: forgotten"));

        var maxRunning = new Option<string?>("--max-running") { Description = "Jobs of the queue running at once in the whole cluster, or 'none'" };
        var rate = new Option<string?>("--rate") { Description = "Jobs of the queue started per second, or 'none'" };
        var limit = new Command("limit", "Cap a queue's running jobs or its rate of starts (cluster-wide; 'none' lifts a limit)") { queueName, maxRunning, rate };
        limit.Validators.Add(r =>
        {
            if (r.GetValue(maxRunning) is null && r.GetValue(rate) is null) r.AddError("Give --max-running, --rate or both.");
            if (r.GetValue(maxRunning) is { } m && m != "none" && !(int.TryParse(m, out var n) && n >= 0))
                r.AddError($"--max-running must be a whole number, 0 or more, or 'none'; got '{m}'.");
            if (r.GetValue(rate) is { } x && x != "none" && !(double.TryParse(x, CultureInfo.InvariantCulture, out var d) && d > 0))
                r.AddError($"--rate must be a number above 0, or 'none'; got '{x}'.");
        });
        Add(limit, (r, api, ct) =>
        {
            var body = new JsonObject();
            if (r.GetValue(maxRunning) is { } m) body["max_running"] = m == "none" ? null : int.Parse(m, CultureInfo.InvariantCulture);
            if (r.GetValue(rate) is { } x) body["rate_limit_per_second"] = x == "none" ? null : double.Parse(x, CultureInfo.InvariantCulture);
            return api.PutAsync($"queues/{Escape(r.GetValue(queueName)!)}/limits", body, ct);
        }, (answer, r) => stdout.WriteLine($"{r.GetValue(queueName)}: {SettingsText(answer)}"));

        var ofTask = new Option<string?>("--task") { Description = "Only the jobs of this task" };
        var count = new Option<int>("--count") { Description = "At most this many (default 50, at most 500)", DefaultValueFactory = _ => 50 };
        var dead = new Command("dead", "A queue's dead letters, oldest first, with why each died") { queueName, ofTask, count };
        Add(dead, (r, api, ct) =>
        {
            var path = $"queues/{Escape(r.GetValue(queueName)!)}/dead?count={r.GetValue(count)}";
            if (r.GetValue(ofTask) is { } t) path += "&task=" + Escape(t);
            return api.GetAsync(path, ct);
        }, (answer, _) => DeadLetters(console, answer!.AsArray()));

        var yes = new Option<bool>("--yes") { Description = "Yes, delete them for good" };
        var purge = new Command("purge-dead", "Delete a queue's dead letters (of --task only, if given) with their records, for good") { queueName, ofTask, yes };
        purge.Validators.Add(r =>
        {
            if (!r.GetValue(yes)) r.AddError("This deletes dead letters for good: add --yes.");
        });
        Add(purge, (r, api, ct) =>
        {
            var path = $"queues/{Escape(r.GetValue(queueName)!)}/dead";
            if (r.GetValue(ofTask) is { } t) path += "?task=" + Escape(t);
            return api.DeleteAsync(path, ct);
        }, (answer, r) => stdout.WriteLine($"{r.GetValue(queueName)}: {answer!["deleted"]} dead letter(s) deleted"));

        var replayId = new Argument<string?>("id") { Description = "The dead letter's job id", Arity = ArgumentArity.ZeroOrOne };
        var all = new Option<string?>("--all") { Description = "Replay every dead letter of this queue (of --task only, if given)" };
        var replay = new Command("replay", "Run dead letters again, as new jobs that keep their lineage; prints the new ids") { replayId, all, ofTask };
        replay.Validators.Add(r =>
        {
            if ((r.GetValue(replayId) is null) == (r.GetValue(all) is null)) r.AddError("Give a job id or --all <queue>, not both.");
            if (r.GetValue(ofTask) is not null && r.GetValue(all) is null) r.AddError("--task goes with --all.");
        });
        Add(replay, (r, api, ct) =>
        {
            if (r.GetValue(replayId) is { } id) return api.PostAsync($"jobs/{Escape(id)}/replay", null, ct);
            var path = $"queues/{Escape(r.GetValue(all)!)}/dead/replay";
            if (r.GetValue(ofTask) is { } t) path += "?task=" + Escape(t);
            return api.PostAsync(path, null, ct);
        }, (answer, _) =>
        {
            var ids = answer!["ids"]!.AsArray();
            if (ids.Count == 0) stdout.WriteLine("nothing to replay");
            foreach (var id in ids) stdout.WriteLine(id!.GetValue<string>());
        });

        var recurring = new Command("recurring", "A queue's recurring jobs (cron schedules): list, set, remove, trigger, pause, resume");
        root.Subcommands.Add(recurring);
        string RecurringPath(ParseResult r) => $"queues/{Escape(r.GetValue(onQueue) ?? "default")}/recurring";
        Add(new Command("list", "The schedules of a queue (--queue; default: default), soonest next run first") { onQueue },
            (r, api, ct) => api.GetAsync(RecurringPath(r), ct), (answer, _) => RecurringList(console, answer!.AsArray()), recurring);
        var scheduleName = new Argument<string>("name") { Description = "The schedule's name (letters, digits, '.', '-', '_')" };
        var cron = new Argument<string>("cron")
        {
            Description = "When, in quotes: five fields (minute hour day month weekday), six with seconds first, or @hourly, @daily...",
        };
        var timeZone = new Option<string?>("--tz") { Description = "The time zone its cron is read in: an IANA id such as Europe/Berlin (default UTC)" };
        var set = new Command("set", "Create or update a schedule: a job of the task at each run of the cron; prints it")
        {
            scheduleName, cron, task, args, onQueue, timeZone, priority, maxAttempts,
        };
        Add(set, (r, api, ct) =>
        {
            var body = new JsonObject
            {
                ["cron"] = r.GetValue(cron), ["task"] = r.GetValue(task), ["args"] = ParsedArgs(r.GetValue(args)), ["time_zone"] = r.GetValue(timeZone),
                ["priority"] = r.GetValue(priority), ["max_attempts"] = r.GetValue(maxAttempts),
            };
            return api.PutAsync($"{RecurringPath(r)}/{Escape(r.GetValue(scheduleName)!)}", body, ct);
        }, (answer, _) => RecurringList(console, [answer!.DeepClone()]), recurring);
        Add(new Command("remove", "Remove a schedule (the jobs it made stay)") { scheduleName, onQueue },
            (r, api, ct) => api.DeleteAsync($"{RecurringPath(r)}/{Escape(r.GetValue(scheduleName)!)}", ct),
            (answer, _) => stdout.WriteLine($"{answer!["removed"]}: removed"), recurring);
        Add(new Command("trigger", "Run a schedule's job now, outside its cron (its next run stays); prints the job's id") { scheduleName, onQueue },
            (r, api, ct) => api.PostAsync($"{RecurringPath(r)}/{Escape(r.GetValue(scheduleName)!)}/trigger", null, ct),
            (answer, _) => stdout.WriteLine(answer!["id"]!.GetValue<string>()), recurring);
        Add(new Command("pause", "Stop a schedule firing until it is resumed (writing it again keeps it paused); prints it") { scheduleName, onQueue },
            (r, api, ct) => api.PostAsync($"{RecurringPath(r)}/{Escape(r.GetValue(scheduleName)!)}/pause", null, ct),
            (answer, _) => RecurringList(console, [answer!.DeepClone()]), recurring);
        Add(new Command("resume", "Fire a paused schedule again from its next run after now (the runs it missed are skipped); prints it")
            { scheduleName, onQueue },
            (r, api, ct) => api.PostAsync($"{RecurringPath(r)}/{Escape(r.GetValue(scheduleName)!)}/resume", null, ct),
            (answer, _) => RecurringList(console, [answer!.DeepClone()]), recurring);

        return root;
    }

    private static JsonNode? ParsedArgs(string? raw)
    {
        if (raw is null) return null;
        try { return JsonNode.Parse(raw); }
        catch (JsonException ex) { throw new CommandLineException($"--args is not JSON: {ex.Message}"); }
    }

    private static void RecurringList(IAnsiConsole console, JsonArray schedules) =>
        List(console, schedules, "No recurring jobs in this queue.", ["name", "cron", "time zone", "task", "next run", "last run", "last job"],
            r => [S(r["name"]), S(r["cron"]), S(r["time_zone"]), S(r["task"]),
                r["error"] is { } e ? "STOPPED: " + S(e) : r["paused_at"] is { } p ? "PAUSED since " + S(p)
                    : r["next_run_at"] is null ? "none (no further occurrence)" : S(r["next_run_at"]),
                S(r["last_run_at"]), S(r["last_job_id"])]);

    private static string Escape(string value) => Uri.EscapeDataString(value);

    private static void Members(IAnsiConsole console, JsonNode cluster)
    {
        var table = Table("member", "status", "reachable", "queues", "busy", "roles");
        foreach (var m in cluster["members"]!.AsArray())
        {
            var address = m!["address"]!.GetValue<string>();
            if (address == cluster["leader"]?.GetValue<string>()) address += " (leader)";
            if (address.StartsWith(cluster["node"]!.GetValue<string>(), StringComparison.Ordinal)) address += " *";
            var workers = m["workers"];
            var busy = workers is null ? "" : $"{S(workers["busy"])}/{S(workers["capacity"])}";
            Row(table, address, S(m["status"]), m["reachable"]!.GetValue<bool>() ? "yes" : "NO", Join(m["queues"]), busy, Join(m["roles"]));
        }
        console.Write(table);
        console.WriteLine("* the node that answered");
    }

    private static void Queues(IAnsiConsole console, JsonArray queues)
    {
        var table = Table("queue", "ready", "scheduled", "running", "waiting", "dead", "succeeded", "served by", "settings");
        foreach (var q in queues)
        {
            var jobs = q!["jobs"]!;
            var servedBy = q["served_by"]!.AsArray().Count;
            Row(table, S(q["name"]), S(jobs["ready"]), S(jobs["scheduled"]), S(jobs["running"]), S(jobs["waiting"]), S(jobs["dead"]),
                S(q["totals"]!["succeeded"]), servedBy == 0 ? "NO NODE" : $"{servedBy} node(s)", SettingsText(q["settings"], servedBy > 0));
        }
        if (queues.Count == 0) console.WriteLine("No queues: no node serves one and Redis holds no jobs.");
        else console.Write(table);
    }

    private static void Queue(IAnsiConsole console, JsonNode q)
    {
        var jobs = q["jobs"]!;
        var lines = new List<(string, string)>
        {
            ("queue", S(q["name"])),
            ("jobs", $"{S(jobs["ready"])} ready, {S(jobs["scheduled"])} scheduled, {S(jobs["running"])} running, {S(jobs["waiting"])} waiting, {S(jobs["dead"])} dead"),
            ("outcomes", $"{S(q["totals"]!["succeeded"])} succeeded, {S(q["totals"]!["retrying"])} retried, {S(q["totals"]!["dead_lettered"])} dead-lettered, {S(q["totals"]!["cancelled"])} cancelled (since the queue's first job)"),
            ("served by", q["served_by"]!.AsArray().Count == 0 ? "no node: its jobs wait until a node serving it starts" : Join(q["served_by"])),
            ("router on", S(q["router_node"])),
            ("settings", SettingsText(q["settings"], q["served_by"]!.AsArray().Count > 0)),
        };
        if (q["router"] is { } r)
            lines.Add(("router", $"{S(r["in_flight"])} in flight, {S(r["buffered"])} buffered, {S(r["free_slots"])} free slots in {S(r["pools"])} pool(s), {S(r["granted"])} granted"));
        if (q["has_recurring"]?.GetValue<bool>() == true) lines.Add(("recurring", "holds recurring schedules ('clusterjobs recurring list -q <queue>')"));
        if (q["problem"] is { } problem) lines.Add(("PROBLEM", S(problem)));
        Fields(console, lines);
    }

    private static void Job(IAnsiConsole console, JsonNode j)
    {
        var lines = new List<(string, string)>
        {
            ("id", S(j["id"])), ("task", S(j["task"])), ("state", S(j["state"])), ("queue", S(j["queue"])),
            ("attempts", j["max_attempts"] is null ? S(j["attempts"]) : $"{S(j["attempts"])} of {S(j["max_attempts"])}"),
            ("args", j["args"]?.ToJsonString() ?? ""), ("enqueued", S(j["enqueued_at"])), ("started", S(j["started_at"])),
            ("finished", S(j["finished_at"])), ("node", S(j["node"])),
        };
        if (j["progress_percent"] is { } p) lines.Add(("progress", $"{p}% {S(j["progress_message"])}".Trim()));
        if (j["cancel_requested"]?.GetValue<bool>() == true) lines.Add(("cancel", "requested"));
        if (j["result"] is { } result) lines.Add(("result", result.ToJsonString()));
        if (j["error"] is { } e) lines.Add(("error", $"{S(e["type"])}: {S(e["message"])} (attempt {S(e["attempt"])}, {S(e["node"])})"));
        foreach (var h in j["history"]?.AsArray() ?? [])
            lines.Add(("failed attempt", $"{S(h!["attempt"])}: {S(h["type"])}: {S(h["message"])} at {S(h["at"])}"));
        if (j["parent_id"] is { } parent) lines.Add(("parent", S(parent)));
        if (j["child_ids"]?.AsArray() is { Count: > 0 } children)
            lines.Add(("children", $"{children.Count} ({S(j["children_pending"])} pending)"));
        if (j["replay_of"] is { } of) lines.Add(("replay of", S(of)));
        if (j["replayed_as"] is { } r) lines.Add(("replayed as", S(r)));
        Fields(console, lines.Where(l => l.Item2.Length > 0).ToList());
    }

    private static void JobList(IAnsiConsole console, JsonArray jobs) =>
        List(console, jobs, "No jobs there.", ["job", "task", "state", "attempts", "enqueued", "started", "node"],
            j => [S(j["id"]), S(j["task"]), S(j["state"]), S(j["attempts"]), S(j["enqueued_at"]), S(j["started_at"]), S(j["node"])]);

    private static void DeadLetters(IAnsiConsole console, JsonArray jobs) =>
        List(console, jobs, "No dead letters.", ["job", "task", "attempts", "why", "finished"],
            j => [S(j["id"]), S(j["task"]), S(j["attempts"]), j["error"] is { } e ? $"{S(e["type"])}: {S(e["message"])}" : "", S(j["finished_at"])]);

    /// <summary>A list answer as a table, a row per item; <paramref name="empty"/> when there is none.</summary>
    private static void List(IAnsiConsole console, JsonArray items, string empty, string[] columns, Func<JsonNode, string[]> row)
    {
        if (items.Count == 0)
        {
            console.WriteLine(empty);
            return;
        }
        var table = Table(columns);
        foreach (var item in items) Row(table, row(item!));
        console.Write(table);
    }

    private static string SettingsText(JsonNode? settings, bool served = true)
    {
        if (settings is null) return served ? "router not answering" : "";
        var parts = new List<string> { settings["paused"]!.GetValue<bool>() ? "paused" : "running" };
        if (settings["max_running"] is { } m) parts.Add($"max running {m}");
        if (settings["rate_limit_per_second"] is { } r) parts.Add($"{r}/s");
        return string.Join(", ", parts);
    }

    private static Table Table(params string[] columns)
    {
        var table = new Table().Border(TableBorder.Simple);
        foreach (var c in columns) table.AddColumn(new TableColumn(c));
        return table;
    }

    private static void Row(Table table, params string[] cells) => table.AddRow(cells.Select(c => (IRenderable)new Text(c)).ToArray());

    private static void Fields(IAnsiConsole console, List<(string Name, string Value)> lines)
    {
        var grid = new Grid().AddColumn(new GridColumn().NoWrap()).AddColumn();
        foreach (var (name, value) in lines) grid.AddRow(new Text(name), new Text(value));
        console.Write(grid);
    }

    private static string S(JsonNode? node) => node switch
    {
        null => "",
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => node.ToJsonString(),
    };

    private static string Join(JsonNode? array) => array is JsonArray a ? string.Join(", ", a.Select(S)) : "";
}
