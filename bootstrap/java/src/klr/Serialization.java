package klr;

import com.amazonaws.services.lambda.runtime.serialization.PojoSerializer;
import com.amazonaws.services.lambda.runtime.serialization.events.LambdaEventSerializers;
import com.amazonaws.services.lambda.runtime.serialization.factories.GsonFactory;
import com.amazonaws.services.lambda.runtime.serialization.factories.JacksonFactory;
import java.io.ByteArrayOutputStream;
import java.lang.reflect.Type;
import java.util.HashMap;
import java.util.Map;

/**
 * 6. The loop: decoding events and encoding results with aws-lambda-java-serialization, the
 * library Lambda's Java runtime uses, chosen as that runtime chooses: a class of
 * aws-lambda-java-events by LambdaEventSerializers (Jackson with Lambda's mix-ins, the class
 * loaded through the function's class loader), any other type by Jackson, or by Gson when the
 * invocation's client context says the caller is an Android app.
 */
final class Serialization {
    /** Where the invocation comes from, as far as the choice of serializer goes. */
    enum Platform { ANDROID, OTHER }

    private final ClassLoader loader;
    private final Map<Type, PojoSerializer<Object>> jackson = new HashMap<Type, PojoSerializer<Object>>();
    private final Map<Type, PojoSerializer<Object>> gson = new HashMap<Type, PojoSerializer<Object>>();

    Serialization(ClassLoader loader) {
        this.loader = loader;
    }

    /** The serializer of a handler's event or result type, made once per type and platform. */
    @SuppressWarnings("unchecked")
    PojoSerializer<Object> of(Type type, Platform platform) {
        Map<Type, PojoSerializer<Object>> cache = platform == Platform.ANDROID ? gson : jackson;
        PojoSerializer<Object> serializer = cache.get(type);
        if (serializer == null) {
            if (type instanceof Class && LambdaEventSerializers.isLambdaSupportedEvent(((Class<?>) type).getName())) {
                serializer = LambdaEventSerializers.serializerFor((Class<Object>) type, loader);
            } else if (platform == Platform.ANDROID) {
                serializer = GsonFactory.getInstance().getSerializer(type);
            } else {
                serializer = JacksonFactory.getInstance().getSerializer(type);
            }
            cache.put(type, serializer);
        }
        return serializer;
    }

    /** The platform named by the client context's environment ({"platform": "Android"}). */
    static Platform platform(Map<String, String> clientEnvironment) {
        String name = clientEnvironment == null ? null : clientEnvironment.get("platform");
        return "Android".equalsIgnoreCase(name) ? Platform.ANDROID : Platform.OTHER;
    }

    /** The runtime's own JSON (error bodies), written by the same Jackson. */
    static byte[] json(Map<String, Object> value) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        JacksonFactory.getInstance().getSerializer(Map.class).toJson(value, out);
        return out.toByteArray();
    }

    /** A header's JSON (client context, Cognito identity) read by Gson, as Lambda's runtime does. */
    static <T> T fromHeader(String json, Class<T> type) {
        return GsonFactory.getInstance().getSerializer(type).fromJson(json);
    }
}
