// Offline XML Schema check for JUnit reports, using only the JDK
// (javax.xml.validation). Run without compiling (Java 11+ source launcher):
//
//   java tests/tools/junit/Validate.java tests/tools/junit/junit.xsd report.xml [more.xml ...]
//
// For each XML file, in order, prints either
//   ok <file>
// or one line per problem found (well-formedness or schema), at most 20 a file:
//   invalid <file>: line L col C: message
// (an unreadable file prints `invalid <file>: line 0 col 0: cannot read: ...`).
// Exit status: 0 when every file is valid, 1 when any is not, 2 on a usage
// error or a schema that does not load. Nothing is fetched from the network:
// external DTDs, schemas and entities are refused.

import java.io.File;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import javax.xml.XMLConstants;
import javax.xml.transform.stream.StreamSource;
import javax.xml.validation.Schema;
import javax.xml.validation.SchemaFactory;
import javax.xml.validation.Validator;
import org.xml.sax.ErrorHandler;
import org.xml.sax.SAXException;
import org.xml.sax.SAXParseException;

public class Validate {
    static final int MAX_ERRORS_PER_FILE = 20;

    public static void main(String[] args) {
        if (args.length < 2) {
            System.err.println("usage: java Validate.java SCHEMA.xsd FILE.xml...");
            System.exit(2);
        }
        Schema schema;
        try {
            SchemaFactory factory = SchemaFactory.newInstance(XMLConstants.W3C_XML_SCHEMA_NS_URI);
            factory.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
            factory.setProperty(XMLConstants.ACCESS_EXTERNAL_DTD, "");
            factory.setProperty(XMLConstants.ACCESS_EXTERNAL_SCHEMA, "file");
            schema = factory.newSchema(new File(args[0]));
        } catch (SAXException e) {
            System.err.println("cannot load schema " + args[0] + ": " + oneLine(e.getMessage()));
            System.exit(2);
            return;
        }

        boolean allValid = true;
        for (int i = 1; i < args.length; i++) {
            String file = args[i];
            List<String> problems = new ArrayList<>();
            if (!Files.isReadable(new File(file).toPath()) || new File(file).isDirectory()) {
                problems.add("line 0 col 0: cannot read: no such readable file");
            } else {
                validate(schema, file, problems);
            }
            if (problems.isEmpty()) {
                System.out.println("ok " + file);
            } else {
                allValid = false;
                for (String p : problems) {
                    System.out.println("invalid " + file + ": " + p);
                }
            }
        }
        System.out.flush();
        System.exit(allValid ? 0 : 1);
    }

    static void validate(Schema schema, String file, List<String> problems) {
        Validator validator = schema.newValidator();
        try {
            validator.setProperty(XMLConstants.ACCESS_EXTERNAL_DTD, "");
            validator.setProperty(XMLConstants.ACCESS_EXTERNAL_SCHEMA, "");
        } catch (SAXException e) {
            // Older parsers without these properties: carry on.
        }
        validator.setErrorHandler(new ErrorHandler() {
            @Override
            public void warning(SAXParseException e) {}

            @Override
            public void error(SAXParseException e) {
                add(problems, e);
            }

            @Override
            public void fatalError(SAXParseException e) throws SAXException {
                add(problems, e);
                throw e;
            }
        });
        try {
            validator.validate(new StreamSource(new File(file)));
        } catch (SAXParseException e) {
            // Already recorded by fatalError (or error); record if it was not.
            String p = describe(e);
            if (!problems.contains(p)) problems.add(p);
        } catch (SAXException e) {
            problems.add("line 0 col 0: " + oneLine(e.getMessage()));
        } catch (java.io.IOException e) {
            problems.add("line 0 col 0: cannot read: " + oneLine(e.getMessage()));
        }
        if (problems.size() > MAX_ERRORS_PER_FILE) {
            int more = problems.size() - MAX_ERRORS_PER_FILE;
            problems.subList(MAX_ERRORS_PER_FILE, problems.size()).clear();
            problems.add("line 0 col 0: ... and " + more + " more");
        }
    }

    static void add(List<String> problems, SAXParseException e) {
        String p = describe(e);
        if (!problems.contains(p)) problems.add(p);
    }

    static String describe(SAXParseException e) {
        return "line " + e.getLineNumber() + " col " + e.getColumnNumber() + ": " + oneLine(e.getMessage());
    }

    static String oneLine(String s) {
        return s == null ? "(no message)" : s.replaceAll("\\s*\\R\\s*", " ").trim();
    }
}
