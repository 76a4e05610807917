package adapter;

import com.amazonaws.services.lambda.runtime.events.APIGatewayProxyRequestEvent;
import com.amazonaws.services.lambda.runtime.events.APIGatewayProxyResponseEvent;
import com.amazonaws.services.lambda.runtime.events.APIGatewayV2HTTPEvent;
import com.amazonaws.services.lambda.runtime.events.APIGatewayV2HTTPResponse;
import com.amazonaws.services.lambda.runtime.events.ApplicationLoadBalancerRequestEvent;
import com.amazonaws.services.lambda.runtime.events.ApplicationLoadBalancerResponseEvent;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The echo route on aws-lambda-java-events' HTTP event classes, one handler per event mode
 * (adapter.Echo::rest and so on): what the runtime's conversion into those classes, read
 * through their getters, made of the request.
 */
public class Echo {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Map<String, String> HEADERS = new LinkedHashMap<>();

    static {
        HEADERS.put("Content-Type", "application/json");
        HEADERS.put("X-Adapter", "aws-lambda-java-events");
    }

    public APIGatewayProxyResponseEvent rest(APIGatewayProxyRequestEvent event) throws JsonProcessingException {
        String body = echo(event.getHttpMethod(), event.getPath(), event.getMultiValueQueryStringParameters(),
                event.getHeaders(), null, event.getBody(), event.getIsBase64Encoded());
        return new APIGatewayProxyResponseEvent().withStatusCode(201).withHeaders(HEADERS).withBody(body);
    }

    public APIGatewayV2HTTPResponse http(APIGatewayV2HTTPEvent event) throws JsonProcessingException {
        Map<String, List<String>> query = new LinkedHashMap<>();
        Map<String, String> single = event.getQueryStringParameters();
        if (single != null) {
            single.forEach((key, value) -> query.put(key, Arrays.asList(value.split(",", -1))));
        }
        String body = echo(event.getRequestContext().getHttp().getMethod(), event.getRequestContext().getHttp().getPath(),
                query, event.getHeaders(), event.getCookies(), event.getBody(), event.getIsBase64Encoded());
        return APIGatewayV2HTTPResponse.builder().withStatusCode(201).withHeaders(HEADERS).withBody(body).build();
    }

    public ApplicationLoadBalancerResponseEvent alb(ApplicationLoadBalancerRequestEvent event) throws JsonProcessingException {
        // ALB leaves the query string URL-encoded.
        Map<String, List<String>> query = new LinkedHashMap<>();
        Map<String, List<String>> multi = event.getMultiValueQueryStringParameters();
        if (multi != null) {
            multi.forEach((key, values) -> {
                List<String> decoded = new ArrayList<>();
                values.forEach(value -> decoded.add(decode(value)));
                query.put(decode(key), decoded);
            });
        } else if (event.getQueryStringParameters() != null) {
            event.getQueryStringParameters().forEach((key, value) -> query.put(decode(key), Collections.singletonList(decode(value))));
        }
        Map<String, String> headers = event.getHeaders();
        if (headers == null && event.getMultiValueHeaders() != null) {
            headers = new LinkedHashMap<>();
            for (Map.Entry<String, List<String>> header : event.getMultiValueHeaders().entrySet()) {
                headers.put(header.getKey(), String.join(",", header.getValue()));
            }
        }
        String body = echo(event.getHttpMethod(), event.getPath(), query, headers, null, event.getBody(), event.getIsBase64Encoded());
        ApplicationLoadBalancerResponseEvent response = new ApplicationLoadBalancerResponseEvent();
        response.setStatusCode(201);
        response.setStatusDescription("201 Created");
        if (event.getMultiValueHeaders() != null) {
            // The load balancer reads the headers of the answer from where it sent them.
            Map<String, List<String>> answered = new LinkedHashMap<>();
            HEADERS.forEach((name, value) -> answered.put(name, Collections.singletonList(value)));
            response.setMultiValueHeaders(answered);
        } else {
            response.setHeaders(HEADERS);
        }
        response.setBody(body);
        return response;
    }

    private static String echo(String method, String path, Map<String, List<String>> query, Map<String, String> headers,
                               List<String> cookies, String body, boolean isBase64) throws JsonProcessingException {
        Map<String, String> lower = new LinkedHashMap<>();
        if (headers != null) {
            headers.forEach((name, value) -> lower.put(name.toLowerCase(), value));
        }
        if (cookies == null) {
            String cookie = lower.get("cookie");
            cookies = cookie == null ? Collections.emptyList() : Arrays.asList(cookie.split("; "));
        }
        byte[] raw = body == null ? new byte[0]
                : isBase64 ? Base64.getDecoder().decode(body) : body.getBytes(StandardCharsets.UTF_8);
        Map<String, Object> seen = new LinkedHashMap<>();
        seen.put("method", method);
        seen.put("path", path);
        seen.put("query", query == null ? Collections.emptyMap() : query);
        seen.put("header", lower.get("x-test"));
        seen.put("largeHeader", lower.getOrDefault("x-large", "").length());
        seen.put("cookies", cookies);
        seen.put("body", Base64.getEncoder().encodeToString(raw));
        return JSON.writeValueAsString(seen);
    }

    private static String decode(String value) {
        try {
            return URLDecoder.decode(value, "UTF-8");
        } catch (java.io.UnsupportedEncodingException impossible) {
            throw new IllegalStateException(impossible);
        }
    }
}
