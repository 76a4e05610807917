#!/usr/bin/env ruby
# frozen_string_literal: true

# KLR bootstrap shim: a small Lambda runtime client for Ruby functions.
#
# Installed in /var/runtime (entry: /var/runtime/bootstrap). It loads the file named by
# _HANDLER (`file.method` or `file.Mod::Class.method`, relative to LAMBDA_TASK_ROOT), then
# loops over the Lambda Runtime API (2018-06-01) at $AWS_LAMBDA_RUNTIME_API: get an event, call
# the handler with the keywords `event:` and `context:`, post the result or the error. What the
# function observes (error types, context object, exit after a critical error) follows the
# official Ruby runtime. Its sections and rules are those of every shim (bootstrap/README.md).
# Standard library only; Ruby 2.5 through 3.3, so no newer syntax.

require 'json'
require 'net/http'
require 'stringio'

# Everything but LambdaContext stays in one namespace, away from the names of the function's
# own code. Kernel's methods are called as Kernel.exit and Kernel.abort: a function's top-level
# `def exit` would replace the plain ones.
module KlrBootstrap
  # ---- 1. Settings ------------------------------------------------------------------------------

  MISSING_SETTING = 'bootstrap: %s is not set; the runtime server (/opt/aws-custom-runtime) ' \
                    'sets it to %s for each bootstrap it starts: run that, or set it yourself'

  # A setting the runtime server always gives: without it, say so and exit 1.
  def self.required_setting(name, meaning)
    value = ENV.fetch(name, '')
    Kernel.abort(format(MISSING_SETTING, name, meaning)) if value.empty?
    value
  end

  # ---- 2. Runtime API client --------------------------------------------------------------------

  API_PREFIX = '/2018-06-01/runtime'
  ERROR_CONTENT_TYPE = 'application/vnd.aws.lambda.error+json'

  # What next_invocation returns; `headers` answers [] with any header's name.
  Invocation = Struct.new(:request_id, :event, :headers)

  # The Runtime API over one keep-alive HTTP/1.1 connection, with the rules of
  # bootstrap/README.md: one retry, an unexpected status ends the process.
  class RuntimeApiClient
    def initialize(address)
      @address = address
      host, _, port = address.rpartition(':')
      @http = Net::HTTP.new(host, port.to_i)
      @http.read_timeout = nil # next blocks until there is an event
      # No connect timeout: Ruby < 3.1 runs it in a thread that calls plain `sleep`, which a
      # function's own top-level `def sleep` would replace.
      @http.open_timeout = nil
      @http.max_retries = 0 # the one retry is ours
      @http.keep_alive_timeout = 86_400 # one connection, however long the function runs
    end

    def next_invocation
      path = "#{API_PREFIX}/invocation/next"
      response = request(Net::HTTP::Get.new(path))
      unexpected('GET', path, response.code) unless response.code == '200'
      Invocation.new(response['Lambda-Runtime-Aws-Request-Id'], response.body, response)
    end

    def post_response(request_id, body, content_type)
      post("/invocation/#{request_id}/response", body, 'Content-Type' => content_type)
    end

    def post_error(request_id, body, error_type)
      post("/invocation/#{request_id}/error", body, error_headers(error_type))
    end

    def post_init_error(body, error_type)
      post('/init/error', body, error_headers(error_type))
    end

    private

    def error_headers(error_type)
      { 'Content-Type' => ERROR_CONTENT_TYPE, 'Lambda-Runtime-Function-Error-Type' => error_type }
    end

    def post(route, body, headers)
      path = API_PREFIX + route
      request_object = Net::HTTP::Post.new(path, headers)
      request_object.body = body
      status = request(request_object).code.to_i
      if (400..499).cover?(status)
        # The server refused this result (too large, stale id) and settled the invocation itself.
        $stderr.puts "bootstrap: the Runtime API refused POST #{path} with HTTP #{status}"
      elsif status != 202
        unexpected('POST', path, status)
      end
    end

    def request(request_object)
      attempts = 0
      begin
        @http.start unless @http.started?
        @http.request(request_object)
      rescue StandardError => e
        @http.finish if @http.started?
        attempts += 1
        retry if attempts < 2 # a dropped keep-alive connection is retried once
        # The server is gone; it reports the lost bootstrap itself.
        Kernel.abort("bootstrap: lost the Runtime API at #{@address}: #{e.class}: #{e.message}")
      end
    end

    def unexpected(method, path, status)
      Kernel.abort("bootstrap: the Runtime API answered #{method} #{path} with HTTP #{status}")
    end
  end

  # ---- 3. Errors --------------------------------------------------------------------------------

  # The classes whose type the official runtime also puts in Lambda-Runtime-Function-Error-Type;
  # for any other it sends Function<UserException>.
  HEADER_CLASSES = %w[ArgumentError NoMethodError Exception StandardError NameError LoadError
                      SystemExit SystemStackError].freeze

  # An exception as the official runtime reports it: `<phase><Class>` (Function or Init).
  class Report
    attr_reader :body, :header_type

    def initialize(error, phase)
      type = "#{phase}<#{error.class}>"
      @header_type = HEADER_CLASSES.include?(error.class.to_s) ? type : 'Function<UserException>'
      @body = { 'errorMessage' => KlrBootstrap.utf8(message(error)), 'errorType' => type,
                'stackTrace' => function_frames(error.backtrace || []).map { |f| KlrBootstrap.utf8(f) } }
    end

    # Logged as the official runtime does: a heading line, then the error as indented JSON.
    def log(heading)
      $stdout.puts(heading, JSON.pretty_generate(body))
    end

    private

    # A NameError's message without what Ruby 3.1 appends to it (a code snippet, here of this
    # file, and spelling suggestions), as Ruby 3.3 gives it.
    def message(error)
      error.respond_to?(:original_message) ? error.original_message : error.message
    end

    # The function's own frames: the trace up to where this file called into the function,
    # less those of Ruby's require machinery.
    def function_frames(backtrace)
      backtrace.take_while { |frame| !frame.start_with?("#{__FILE__}:") }
               .reject { |frame| frame.start_with?('<internal:') || frame.include?('/rubygems/') }
    end
  end

  # Text JSON can carry: an error message may hold bytes that are not UTF-8.
  def self.utf8(value)
    text = value.to_s
    text = text.dup.force_encoding(Encoding::UTF_8) if text.encoding == Encoding::BINARY
    text.encode(Encoding::UTF_8, invalid: :replace, undef: :replace).scrub
  end

  # Logs reach the server at once, before the result is posted (and so before the END line).
  def self.setup_output
    $stdout.sync = true
    $stderr.sync = true
  end

  # Lambda's logging controls for Ruby's Logger, as the official runtime client applies them
  # from Ruby 3.2 (aws-lambda-ruby-runtime-interface-client PR #58): a Logger on $stdout or
  # $stderr (or none) that was given no level gets AWS_LAMBDA_LOG_LEVEL's (TRACE is DEBUG);
  # with AWS_LAMBDA_LOG_FORMAT=JSON, one given no formatter writes JsonLogFormatter's records.
  # Other Loggers, puts and the text format's lines stay as they are.
  LOG_LEVELS = { 'TRACE' => 0, 'DEBUG' => 0, 'INFO' => 1, 'WARN' => 2, 'ERROR' => 3,
                 'FATAL' => 4 }.freeze

  class << self
    # The current invocation's request id, for the JSON records; nil during init.
    attr_accessor :request_id
  end

  def self.setup_logger
    return if (RUBY_VERSION.split('.').map(&:to_i) <=> [3, 2]) < 0
    json = ENV.fetch('AWS_LAMBDA_LOG_FORMAT', '').casecmp('JSON').zero?
    level = LOG_LEVELS[ENV.fetch('AWS_LAMBDA_LOG_LEVEL', '').upcase]
    return unless json || level
    require 'logger'
    LambdaLoggerDefaults.json = json
    LambdaLoggerDefaults.level = level
    ::Logger.prepend(LambdaLoggerDefaults)
  end

  # Prepended to ::Logger: what the function sets itself wins over these defaults.
  module LambdaLoggerDefaults
    class << self
      attr_accessor :json, :level
    end

    def initialize(logdev = nil, *args, **options, &block)
      if logdev.nil? || logdev.equal?($stdout) || logdev.equal?($stderr)
        defaults = LambdaLoggerDefaults
        options[:formatter] ||= JsonLogFormatter.new if defaults.json
        options[:level] = defaults.level if defaults.level && !options.key?(:level)
      end
      super(logdev, *args, **options, &block)
    end
  end

  # One JSON line per Logger record: timestamp (UTC, milliseconds), level (Logger's severity:
  # DEBUG to FATAL, ANY for `unknown`), message, requestId, logger (the progname, when set); an
  # exception logged as the message adds errorType, errorMessage, stackTrace and location.
  class JsonLogFormatter
    def call(severity, time, progname, msg)
      record = { 'timestamp' => time.getutc.strftime('%Y-%m-%dT%H:%M:%S.%LZ'),
                 'level' => severity, 'message' => KlrBootstrap.utf8(text(msg)),
                 'requestId' => KlrBootstrap.request_id }
      record['logger'] = KlrBootstrap.utf8(progname) unless progname.to_s.empty?
      record.update(error_fields(msg)) if msg.is_a?(::Exception)
      "#{JSON.generate(record.compact)}\n"
    end

    private

    # What Logger's own formatter makes of a message, but an exception's is its message alone.
    def text(msg)
      case msg
      when ::String then msg
      when ::Exception then msg.message
      else msg.inspect
      end
    end

    def error_fields(error)
      frames = (error.backtrace || []).map { |frame| KlrBootstrap.utf8(frame) }
      { 'errorType' => error.class.to_s, 'errorMessage' => KlrBootstrap.utf8(error.message),
        'stackTrace' => frames, 'location' => location(frames.first) }
    end

    # `file:line:in 'method'` as `file:method:line`.
    def location(frame)
      match = frame && frame.match(/\A(.+):(\d+):in [`'](.+)'\z/)
      match ? "#{match[1]}:#{match[3]}:#{match[2]}" : frame
    end
  end

  # ---- 4. Context -------------------------------------------------------------------------------

  # The context object a handler receives, with the official runtime's (top-level) class name
  # and readers.
  class ::LambdaContext
    attr_reader :aws_request_id, :invoked_function_arn, :log_group_name, :log_stream_name,
                :function_name, :memory_limit_in_mb, :function_version, :identity,
                :client_context, :tenant_id, :deadline_ms

    def initialize(headers)
      @aws_request_id = headers['Lambda-Runtime-Aws-Request-Id']
      @invoked_function_arn = headers['Lambda-Runtime-Invoked-Function-Arn']
      @deadline_ms = headers['Lambda-Runtime-Deadline-Ms'].to_i
      @tenant_id = optional(headers['Lambda-Runtime-Aws-Tenant-Id'])
      # Identity and client context are the parsed JSON hashes, as in the official runtime.
      @identity = optional(headers['Lambda-Runtime-Cognito-Identity']) { |text| JSON.parse(text) }
      @client_context = optional(headers['Lambda-Runtime-Client-Context']) { |text| JSON.parse(text) }
      @function_name = ENV['AWS_LAMBDA_FUNCTION_NAME']
      @function_version = ENV['AWS_LAMBDA_FUNCTION_VERSION']
      @memory_limit_in_mb = ENV['AWS_LAMBDA_FUNCTION_MEMORY_SIZE']
      @log_group_name = ENV['AWS_LAMBDA_LOG_GROUP_NAME']
      @log_stream_name = ENV['AWS_LAMBDA_LOG_STREAM_NAME']
    end

    def get_remaining_time_in_millis
      [@deadline_ms - Process.clock_gettime(Process::CLOCK_REALTIME, :millisecond), 0].max
    end

    private

    def optional(value)
      return nil if value.nil? || value.empty?
      block_given? ? yield(value) : value
    end
  end

  # ---- 5. Handler loading -----------------------------------------------------------------------

  HANDLER_FORM = 'must be of form FILENAME.METHOD or FILENAME.CLASS.METHOD where FILENAME ' \
                 'corresponds with an existing Ruby source file FILENAME.rb, CLASS is an ' \
                 'optional module/class namespace and METHOD is a callable method. If using ' \
                 'CLASS, METHOD must be a class-level method.'

  # The function named by _HANDLER: a top-level method, or a class-level method of a
  # (namespaced) class or module.
  class Handler
    def initialize(name, task_root)
      parts = name.split('.')
      unless [2, 3].include?(parts.size)
        raise ArgumentError, "Invalid handler #{parts}, #{HANDLER_FORM}"
      end
      @file = parts.first
      @method_name = parts.last
      @owner_name = parts[1] if parts.size == 3
      @task_root = task_root
    end

    # Runs the function file's top-level code: any exception is an init error.
    def require_file
      require File.join(@task_root, @file)
    end

    # A missing method or class is looked up here, per invocation, as in the official runtime.
    def call(event, context)
      owner = @owner_name ? Object.const_get(@owner_name) : TOPLEVEL_BINDING.receiver
      owner.send(@method_name, event: event, context: context)
    end
  end

  def self.load_handler(task_root, name)
    handler = Handler.new(name, task_root)
    handler.require_file
    handler
  end

  # ---- 6. The loop ------------------------------------------------------------------------------

  def self.main
    runtime_api = required_setting('AWS_LAMBDA_RUNTIME_API', 'host:port of the Runtime API')
    task_root = required_setting('LAMBDA_TASK_ROOT', "the folder of the function's code")
    setup_output
    setup_logger
    api = RuntimeApiClient.new(runtime_api)
    handler_name = ENV.fetch('_HANDLER', '')
    begin
      handler = load_handler(task_root, handler_name)
    rescue Exception => e # anything raised while loading is an init error, SyntaxError too
      report = Report.new(e, 'Init')
      report.log("Init error when loading handler #{handler_name}")
      api.post_init_error(JSON.generate(report.body), report.header_type)
      Kernel.exit(-4) # the official runtime's status after an init error
    end
    loop { serve_one(api, handler) }
  end

  def self.serve_one(api, handler)
    invocation = api.next_invocation
    self.request_id = invocation.request_id
    trace_id = invocation.headers['Lambda-Runtime-Trace-Id']
    if trace_id
      ENV['_X_AMZN_TRACE_ID'] = trace_id
    else
      ENV.delete('_X_AMZN_TRACE_ID')
    end
    begin
      event = unmarshal(invocation)
      body, content_type = marshal(handler.call(event, LambdaContext.new(invocation.headers)))
    rescue Exception => e # the function's failure, whatever it is: exit, stack overflow...
      return report_error(api, invocation.request_id, e)
    end
    api.post_response(invocation.request_id, body, content_type)
  end

  # After a missing method or constant (NameError, NoMethodError) or an exception that is not
  # a StandardError, the official runtime exits once reported: the server starts a fresh process.
  def self.report_error(api, request_id, error)
    critical = error.is_a?(NameError) || !error.is_a?(StandardError)
    report = Report.new(error, 'Function')
    report.log(critical ? 'Critical exception from handler' : 'Error raised from handler method')
    api.post_error(request_id, JSON.generate(report.body), report.header_type)
    Kernel.exit(-1) if critical
  end

  # JSON events are parsed (string keys); any other content type reaches the handler as is.
  def self.unmarshal(invocation)
    return invocation.event unless invocation.headers['Content-Type'] == 'application/json'
    JSON.parse(invocation.event)
  end

  # IO results are sent as they are; anything else through its to_json, as the official
  # runtime does (so a value JSON cannot encode fails as Function<JSON::GeneratorError>).
  def self.marshal(result)
    return [result.read, 'application/unknown'] if result.is_a?(IO) || result.is_a?(StringIO)
    [result.to_json, 'application/json']
  end
end

KlrBootstrap.main if $PROGRAM_NAME == __FILE__
