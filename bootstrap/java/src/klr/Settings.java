package klr;

/** 1. Settings: what the runtime server gives each bootstrap, read once at start. */
final class Settings {
    final String runtimeApi;
    final String taskRoot;
    final String handler;

    private Settings(String runtimeApi, String taskRoot, String handler) {
        this.runtimeApi = runtimeApi;
        this.taskRoot = taskRoot;
        this.handler = handler;
    }

    /** The settings; a missing one (the shim was not started by the server) ends the process. */
    static Settings read() {
        String runtimeApi = required("AWS_LAMBDA_RUNTIME_API", "host:port of the Runtime API");
        String taskRoot = required("LAMBDA_TASK_ROOT", "the folder of the function's code");
        String handler = System.getenv("_HANDLER");
        return new Settings(runtimeApi, taskRoot, handler == null ? "" : handler);
    }

    /** No default: one would hide the misconfiguration. */
    private static String required(String name, String meaning) {
        String value = System.getenv(name);
        if (value == null || value.isEmpty()) {
            System.err.println("bootstrap: " + name + " is not set; the runtime server (/opt/aws-custom-runtime) "
                    + "sets it to " + meaning + " for each bootstrap it starts: run that, or set it yourself");
            System.exit(1);
        }
        return value;
    }
}
