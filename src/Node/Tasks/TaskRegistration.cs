using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterJobs.Node.Tasks;

/// <summary>One task name bound to its handler type; knows how to bind arguments, run, split and reduce.</summary>
public sealed class TaskRegistration
{
    private readonly Func<IServiceProvider, JsonElement, JobContext, CancellationToken, Task<string>> _invoke;

    private TaskRegistration(string name, Type handlerType, Type argsType,
        Func<IServiceProvider, JsonElement, JobContext, CancellationToken, Task<string>> invoke)
    {
        Name = name;
        HandlerType = handlerType;
        ArgsType = argsType;
        _invoke = invoke;
    }

    public string Name { get; }
    public Type HandlerType { get; }
    public Type ArgsType { get; }
    /// <summary>How failed attempts are retried (the job's envelope may override attempts and delays).</summary>
    public RetryPolicy Retry { get; private init; } = RetryPolicy.Default;
    public SplitOptions Splitting { get; private init; } = new();
    /// <summary>Size of an input by the task's splitter; null when the task declares none.</summary>
    internal Func<IServiceProvider, JsonElement, int>? SizeOf { get; private init; }
    /// <summary>Splits an input by the task's splitter; null when the task declares none.</summary>
    internal Func<IServiceProvider, JsonElement, int, IReadOnlyList<JsonElement>>? SplitArgs { get; private init; }
    /// <summary>The task's reducer over its children; null: the children's results become a JSON array.</summary>
    internal Func<IServiceProvider, IReadOnlyList<ChildResult>, JobContext, CancellationToken, Task<string>>? Reduce { get; private init; }

    public bool CanSplit => SplitArgs is not null;

    /// <summary>Runs the handler; returns its result as JSON ("null" for handlers without a result).</summary>
    public Task<string> InvokeAsync(IServiceProvider services, JsonElement args, JobContext context, CancellationToken ct) =>
        _invoke(services, args, context, ct);

    /// <summary>This registration with <paramref name="retry"/> and <paramref name="splitting"/>.</summary>
    public TaskRegistration With(RetryPolicy retry, SplitOptions? splitting = null)
    {
        retry.Validate();
        if (splitting?.ChunkSize is < 1) throw new ArgumentException("ChunkSize must be at least 1.");
        if (splitting?.ChunkSize is not null && !CanSplit)
            throw new ArgumentException($"Task '{Name}' has a chunk size but {HandlerType.Name} is no IJobSplitter<{ArgsType.Name}>.");
        return new TaskRegistration(Name, HandlerType, ArgsType, _invoke)
        {
            Retry = retry, Splitting = splitting ?? Splitting, SizeOf = SizeOf, SplitArgs = SplitArgs, Reduce = Reduce,
        };
    }

    public TaskRegistration WithRetry(RetryPolicy retry) => With(retry);

    public static TaskRegistration For<THandler>(string name, JsonSerializerOptions json) where THandler : class
    {
        var handler = typeof(THandler);
        const System.Reflection.BindingFlags flags = System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static;
        foreach (var iface in handler.GetInterfaces().Where(i => i.IsGenericType))
        {
            var definition = iface.GetGenericTypeDefinition();
            var types = iface.GetGenericArguments();
            if (definition == typeof(IJobHandler<,>))
                return (TaskRegistration)typeof(TaskRegistration).GetMethod(nameof(WithResult), flags)!
                    .MakeGenericMethod(handler, types[0], types[1]).Invoke(null, [name, json])!;
            if (definition == typeof(IJobHandler<>))
                return (TaskRegistration)typeof(TaskRegistration).GetMethod(nameof(WithoutResult), flags)!
                    .MakeGenericMethod(handler, types[0]).Invoke(null, [name, json])!;
        }
        throw new ArgumentException($"{handler.Name} implements neither IJobHandler<TArgs> nor IJobHandler<TArgs, TResult>.");
    }

    private static TaskRegistration WithResult<THandler, TArgs, TResult>(string name, JsonSerializerOptions json)
        where THandler : class, IJobHandler<TArgs, TResult>
    {
        var registration = new TaskRegistration(name, typeof(THandler), typeof(TArgs), async (sp, args, ctx, ct) =>
        {
            var bound = Bind<TArgs>(args, json, name);
            var handler = ActivatorUtilities.GetServiceOrCreateInstance<THandler>(sp);
            var result = await UserCode.Handle(handler, bound, ctx, ct).ConfigureAwait(false);
            return JsonSerializer.Serialize(result, json);
        });
        registration = WithSplitter<THandler, TArgs>(registration, json);
        if (!typeof(IJobReducer<TResult>).IsAssignableFrom(typeof(THandler))) return registration;
        return new TaskRegistration(name, typeof(THandler), typeof(TArgs), registration._invoke)
        {
            SizeOf = registration.SizeOf,
            SplitArgs = registration.SplitArgs,
            Reduce = async (sp, children, ctx, ct) =>
            {
                var outcomes = children.Select(c => c.Succeeded
                    ? new ChildOutcome<TResult>(c.JobId, JsonSerializer.Deserialize<TResult>(c.Json, json), null)
                    : new ChildOutcome<TResult>(c.JobId, default, Protocol.ProtocolJson.DeserializeError(c.Json))).ToList();
                var reducer = (IJobReducer<TResult>)ActivatorUtilities.GetServiceOrCreateInstance<THandler>(sp);
                return JsonSerializer.Serialize(await UserCode.Reduce(reducer, outcomes, ctx, ct).ConfigureAwait(false), json);
            },
        };
    }

    private static TaskRegistration WithoutResult<THandler, TArgs>(string name, JsonSerializerOptions json)
        where THandler : class, IJobHandler<TArgs> =>
        WithSplitter<THandler, TArgs>(new(name, typeof(THandler), typeof(TArgs), async (sp, args, ctx, ct) =>
        {
            var bound = Bind<TArgs>(args, json, name);
            var handler = ActivatorUtilities.GetServiceOrCreateInstance<THandler>(sp);
            await UserCode.Handle(handler, bound, ctx, ct).ConfigureAwait(false);
            return "null";
        }), json);

    private static TaskRegistration WithSplitter<THandler, TArgs>(TaskRegistration registration, JsonSerializerOptions json)
        where THandler : class
    {
        if (!typeof(IJobSplitter<TArgs>).IsAssignableFrom(typeof(THandler))) return registration;
        var name = registration.Name;
        IJobSplitter<TArgs> Splitter(IServiceProvider sp) => (IJobSplitter<TArgs>)ActivatorUtilities.GetServiceOrCreateInstance<THandler>(sp);
        return new TaskRegistration(name, registration.HandlerType, registration.ArgsType, registration._invoke)
        {
            SizeOf = (sp, args) => UserCode.SizeOf(Splitter(sp), Bind<TArgs>(args, json, name)),
            SplitArgs = (sp, args, chunk) => UserCode.Split(Splitter(sp), Bind<TArgs>(args, json, name), chunk)
                .Select(part => JsonSerializer.SerializeToElement(part, json)).ToList(),
        };
    }

    /// <summary>
    /// Binds JSON arguments: an object by name (strictly: unknown or missing required members fail), an array by
    /// position onto the type's constructor parameters (Celery's <c>args=[...]</c>), a one-element array onto a
    /// simple argument type.
    /// </summary>
    internal static TArgs Bind<TArgs>(JsonElement args, JsonSerializerOptions json, string task)
    {
        try
        {
            var source = args;
            if (args.ValueKind == JsonValueKind.Array && !IsCollection(typeof(TArgs)))
                source = Positional<TArgs>(args, task);
            var value = source.Deserialize<TArgs>(json);
            if (value is null && default(TArgs) is null && !AllowsNull<TArgs>())
                throw new JobArgumentException($"Task '{task}' needs arguments of type {typeof(TArgs).Name}, got null.");
            return value!;
        }
        catch (JsonException ex)
        {
            throw new JobArgumentException($"Arguments of task '{task}' do not bind to {typeof(TArgs).Name}: {ex.Message}", ex);
        }
        catch (Exception ex) when (ex is InvalidOperationException or NotSupportedException or FormatException)
        {
            throw new JobArgumentException($"Arguments of task '{task}' do not bind to {typeof(TArgs).Name}: {ex.Message}", ex);
        }
    }

    /// <summary>The JSON name of a constructor parameter: its property's [JsonPropertyName], else its own name.</summary>
    private static string JsonNameOf(Type type, System.Reflection.ParameterInfo parameter)
    {
        var property = type.GetProperty(parameter.Name!, System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.IgnoreCase);
        return property?.GetCustomAttributes(typeof(System.Text.Json.Serialization.JsonPropertyNameAttribute), true)
            .Cast<System.Text.Json.Serialization.JsonPropertyNameAttribute>().FirstOrDefault()?.Name ?? parameter.Name!;
    }

    private static bool AllowsNull<T>() => Nullable.GetUnderlyingType(typeof(T)) is not null;

    private static bool IsCollection(Type type) =>
        type != typeof(string) && (type.IsArray || typeof(System.Collections.IEnumerable).IsAssignableFrom(type));

    private static JsonElement Positional<TArgs>(JsonElement array, string task)
    {
        var items = array.EnumerateArray().ToArray();
        var type = Nullable.GetUnderlyingType(typeof(TArgs)) ?? typeof(TArgs);
        if (type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal) || type == typeof(Guid) ||
            type == typeof(DateTime) || type == typeof(DateTimeOffset) || type == typeof(TimeSpan) || type == typeof(DateOnly) || type == typeof(TimeOnly))
        {
            if (items.Length != 1)
                throw new JobArgumentException($"Task '{task}' takes one {type.Name} argument, got {items.Length}.");
            return items[0];
        }
        var ctor = type.GetConstructors().OrderByDescending(c => c.GetParameters().Length).FirstOrDefault();
        var parameters = ctor?.GetParameters() ?? [];
        if (items.Length > parameters.Length)
            throw new JobArgumentException(
                $"Task '{task}' takes {parameters.Length} positional argument(s) ({string.Join(", ", parameters.Select(p => p.Name))}), got {items.Length}.");
        var obj = new JsonObject();
        for (var i = 0; i < items.Length; i++) obj[JsonNameOf(type, parameters[i])] = JsonNode.Parse(items[i].GetRawText());
        return JsonSerializer.SerializeToElement(obj);
    }
}
