using System.Text.Json;
using System.Text.Json.Serialization;
using ClusterJobs.Node.Demo;
using ClusterJobs.Node.Tasks;

namespace ClusterJobs.Node.Tests;

public sealed class TaskBindingSpecs
{
    private static readonly JsonSerializerOptions Json = TaskRegistry.DefaultArgumentJson();

    private static T Bind<T>(string json) => TaskRegistration.Bind<T>(Jobs.Json(json), Json, "task");

    private static JobArgumentException Fails<T>(string json) => Assert.Throws<JobArgumentException>(() => Bind<T>(json));

    public enum Color { Red, Green }

    public sealed record Point(int X, int Y);

    public sealed record Renamed([property: JsonPropertyName("first_name")] string FirstName, int Age);

    public sealed class Settable
    {
        public int Count { get; set; }
    }

    // ---- an object binds by name ----

    [Fact]
    public void An_object_binds_by_name_in_camel_case()
    {
        Assert.Equal(new AddArgs(2, 3), Bind<AddArgs>("""{"a":2,"b":3}"""));
        Assert.Equal(new SendEmailArgs("x@y.z", "Hi"), Bind<SendEmailArgs>("""{"recipient":"x@y.z","subject":"Hi"}"""));
    }

    [Fact]
    public void An_object_binds_whatever_the_case_of_its_names()
    {
        Assert.Equal(new AddArgs(2, 3), Bind<AddArgs>("""{"A":2,"B":3}"""));
    }

    [Fact]
    public void Optional_constructor_parameters_may_be_left_out()
    {
        Assert.Equal(new SendEmailArgs("x@y.z"), Bind<SendEmailArgs>("""{"recipient":"x@y.z"}"""));
        Assert.Equal(new FailArgs("m", 0), Bind<FailArgs>("""{"message":"m"}"""));
    }

    [Fact]
    public void An_unknown_member_fails()
    {
        var ex = Fails<AddArgs>("""{"a":1,"b":2,"c":3}""");
        Assert.Contains("Arguments of task 'task' do not bind to AddArgs", ex.Message);
        Assert.IsAssignableFrom<JsonException>(ex.InnerException);
    }

    [Fact]
    public void A_missing_required_member_fails()
    {
        Assert.Contains("AddArgs", Fails<AddArgs>("""{"a":1}""").Message);
    }

    [Fact]
    public void A_null_for_a_non_nullable_member_fails()
    {
        Fails<SendEmailArgs>("""{"recipient":null}""");
    }

    [Fact]
    public void Numbers_in_strings_do_not_bind_to_numbers()
    {
        Fails<AddArgs>("""{"a":"1","b":2}""");
    }

    [Fact]
    public void A_wrong_json_type_fails()
    {
        Fails<AddArgs>("\"text\"");
        Fails<AddArgs>("42");
    }

    [Fact]
    public void Null_arguments_fail_for_a_type_that_needs_some()
    {
        Assert.Contains("got null", Fails<AddArgs>("null").Message);
    }

    [Fact]
    public void Null_arguments_bind_to_a_nullable_value()
    {
        Assert.Null(Bind<int?>("null"));
    }

    [Fact]
    public void Settable_properties_bind_by_name()
    {
        Assert.Equal(4, Bind<Settable>("""{"count":4}""").Count);
        Fails<Settable>("""{"count":4,"other":1}""");
    }

    // ---- an array binds by position onto the constructor ----

    [Fact]
    public void An_array_binds_by_position_onto_the_constructor_parameters()
    {
        Assert.Equal(new AddArgs(2, 3), Bind<AddArgs>("[2,3]"));
        Assert.Equal(new Point(-1, 9), Bind<Point>("[-1,9]"));
        Assert.Equal(new SendEmailArgs("x@y.z", "Hi"), Bind<SendEmailArgs>("""["x@y.z","Hi"]"""));
    }

    [Fact]
    public void Trailing_optional_parameters_may_be_left_out_of_an_array()
    {
        Assert.Equal(new SendEmailArgs("x@y.z"), Bind<SendEmailArgs>("""["x@y.z"]"""));
    }

    [Fact]
    public void An_array_with_too_many_items_fails_naming_the_parameters()
    {
        var ex = Fails<AddArgs>("[1,2,3]");
        Assert.Contains("takes 2 positional argument(s) (A, B), got 3", ex.Message);
    }

    [Fact]
    public void An_array_with_too_few_items_for_the_required_parameters_fails()
    {
        Fails<AddArgs>("[1]");
        Fails<AddArgs>("[]");
    }

    [Fact]
    public void Positional_items_are_typed_strictly()
    {
        Fails<AddArgs>("""["1","2"]""");
    }

    [Fact]
    public void An_array_binds_to_a_collection_as_it_is()
    {
        Assert.Equal([1, 2, 3], Bind<int[]>("[1,2,3]"));
        Assert.Equal(["a", "b"], Bind<List<string>>("""["a","b"]"""));
        Assert.Equal([new Point(1, 2)], Bind<List<Point>>("""[{"x":1,"y":2}]"""));
    }

    /// <summary>Exposes a bug: positional items are keyed by the C# parameter name, not the member's JSON name.</summary>
    [Fact]
    public void An_array_binds_by_position_onto_parameters_with_their_own_json_names()
    {
        Assert.Equal(new Renamed("Ada", 36), Bind<Renamed>("""["Ada",36]"""));
    }

    // ---- a simple type binds from a one-element array ----

    [Fact]
    public void A_simple_argument_binds_from_a_one_element_array()
    {
        Assert.Equal(5, Bind<int>("[5]"));
        Assert.Equal(5L, Bind<long>("[5]"));
        Assert.Equal("hi", Bind<string>("""["hi"]"""));
        Assert.Equal(1.5m, Bind<decimal>("[1.5]"));
        Assert.True(Bind<bool>("[true]"));
        Assert.Equal(Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e"), Bind<Guid>("""["0f8fad5b-d9cb-469f-a165-70867728950e"]"""));
        Assert.Equal(Color.Green, Bind<Color>("[1]"));
    }

    [Fact]
    public void A_simple_argument_binds_from_the_bare_value_too()
    {
        Assert.Equal(5, Bind<int>("5"));
        Assert.Equal("hi", Bind<string>("\"hi\""));
    }

    [Fact]
    public void A_simple_argument_from_an_array_of_another_length_fails()
    {
        Assert.Contains("takes one Int32 argument, got 2", Fails<int>("[1,2]").Message);
        Assert.Contains("got 0", Fails<string>("[]").Message);
    }

    [Fact]
    public void A_simple_argument_of_the_wrong_json_type_fails()
    {
        Fails<int>("""["5"]""");
        Fails<int>("[5.5]");
        Fails<Guid>("""["not a guid"]""");
    }

    /// <summary>Exposes a bug: a nullable simple type is not treated as simple, so [5] goes to Nullable's constructor.</summary>
    [Fact]
    public void A_nullable_simple_argument_binds_from_a_one_element_array()
    {
        Assert.Equal(5, Bind<int?>("[5]"));
    }

    /// <summary>Exposes a bug: date and time types are not treated as simple (their constructors are used for [..]).</summary>
    [Fact]
    public void A_date_argument_binds_from_a_one_element_array()
    {
        Assert.Equal(new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.Zero), Bind<DateTimeOffset>("""["2024-05-06T07:08:09+00:00"]"""));
    }

    // ---- registration ----

    [Fact]
    public void A_registration_knows_its_argument_type()
    {
        var registration = TaskRegistration.For<AddTask>("add", Json);
        Assert.Equal("add", registration.Name);
        Assert.Equal(typeof(AddArgs), registration.ArgsType);
        Assert.Equal(typeof(AddTask), registration.HandlerType);
    }

    [Fact]
    public void A_type_that_is_no_handler_cannot_be_registered()
    {
        Assert.Throws<ArgumentException>(() => TaskRegistration.For<Settable>("nope", Json));
    }

    [Fact]
    public void A_task_name_registered_twice_is_refused()
    {
        Assert.Throws<ArgumentException>(() => new TaskRegistry([TaskRegistration.For<AddTask>("add", Json), TaskRegistration.For<SleepTask>("add", Json)]));
    }

    [Fact]
    public void An_unknown_task_names_the_registered_ones()
    {
        var registry = new TaskRegistry([TaskRegistration.For<AddTask>("add", Json), TaskRegistration.For<SleepTask>("sleep", Json)]);
        var ex = Assert.Throws<UnknownTaskException>(() => registry.Get("nope"));
        Assert.Contains("Registered tasks: add, sleep.", ex.Message);
    }
}
