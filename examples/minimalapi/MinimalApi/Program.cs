// The walkthrough's .NET 6 minimal API. It listens on 8080 (ASPNETCORE_URLS in the Dockerfile),
// answers "Hello, World! v1.0" at / and reports its health at /healthz for the probes.
var builder = WebApplication.CreateBuilder(args);
var app = builder.Build();

app.MapGet("/", () => "Hello, World! v1.0");
app.MapGet("/healthz", () => Results.Text("ok"));

app.Run();
