using System.Collections.Frozen;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ClusterJobs.Node.Tasks;

/// <summary>The task names this node can run, each bound to its handler.</summary>
public sealed class TaskRegistry
{
    private readonly FrozenDictionary<string, TaskRegistration> _tasks;

    public TaskRegistry(IEnumerable<TaskRegistration> tasks)
    {
        var list = tasks.ToList();
        var duplicate = list.GroupBy(t => t.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"Task '{duplicate.Key}' is registered twice.");
        _tasks = list.ToFrozenDictionary(t => t.Name);
    }

    public IReadOnlyCollection<string> Names => _tasks.Keys;

    public TaskRegistration? TryGet(string task) => _tasks.GetValueOrDefault(task);

    public TaskRegistration Get(string task) =>
        _tasks.TryGetValue(task, out var registration) ? registration : throw new UnknownTaskException(task, _tasks.Keys);

    /// <summary>Argument binding: web (camelCase, case-insensitive) and strict, so a wrong argument fails loudly.</summary>
    public static JsonSerializerOptions DefaultArgumentJson() => new(JsonSerializerDefaults.Web)
    {
        RespectRequiredConstructorParameters = true,
        RespectNullableAnnotations = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        NumberHandling = JsonNumberHandling.Strict,
    };
}
